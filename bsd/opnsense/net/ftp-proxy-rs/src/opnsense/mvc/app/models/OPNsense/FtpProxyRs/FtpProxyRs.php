<?php

/*
 * The ftp-proxy-rs model: its instances (FtpProxyRs.xml).
 * ISC License, the ftp-proxy developers.
 */

namespace OPNsense\FtpProxyRs;

use OPNsense\Base\BaseModel;
use OPNsense\Base\Messages\Message;

class FtpProxyRs extends BaseModel
{
    /* Rules across fields: one family per instance, a port each. */
    public function performValidation($validateFullModel = false)
    {
        $messages = parent::performValidation($validateFullModel);
        $ports = [];
        foreach ($this->instances->instance->iterateItems() as $inst) {
            $key = $inst->__reference;
            $v6 = strpos((string)$inst->listenaddress, ':') !== false;
            foreach (['sourceaddress', 'reverseaddress'] as $f) {
                $a = (string)$inst->$f;
                if ($a !== '' && (strpos($a, ':') !== false) != $v6) {
                    $messages->appendMessage(new Message(
                        gettext('Use the listen address\'s family.'),
                        $key . '.' . $f
                    ));
                }
            }
            if ((string)$inst->reverseport !== '' && (string)$inst->reverseaddress === '') {
                $messages->appendMessage(new Message(
                    gettext('A reverse port needs a reverse address.'),
                    $key . '.reverseport'
                ));
            }
            $where = (string)$inst->listenaddress . ' ' . (string)$inst->listenport;
            if ((string)$inst->enabled == '1' && isset($ports[$where])) {
                $messages->appendMessage(new Message(
                    gettext('Another instance listens there.'),
                    $key . '.listenport'
                ));
            }
            $ports[$where] = true;
        }
        return $messages;
    }
}

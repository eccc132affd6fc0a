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
            foreach (['sourceaddress', 'reverseaddress', 'advertisedaddress'] as $f) {
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
            if ((string)$inst->advertisedaddress !== '' && (string)$inst->reverseaddress === '') {
                $messages->appendMessage(new Message(
                    gettext('An advertised address needs a reverse address.'),
                    $key . '.advertisedaddress'
                ));
            }
            $range = explode('-', (string)$inst->proxyports);
            if (count($range) == 2) {
                [$low, $high] = array_map('intval', $range);
                $listen = (int)(string)$inst->listenport;
                if ($low < 1024 || $high > 65535 || $high - $low < 7) {
                    $messages->appendMessage(new Message(
                        gettext('LOW-HIGH, ports 1024 to 65535, at least 8.'),
                        $key . '.proxyports'
                    ));
                } elseif ($listen >= $low && $listen <= $high) {
                    $messages->appendMessage(new Message(
                        gettext('The range holds the listen port.'),
                        $key . '.proxyports'
                    ));
                }
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

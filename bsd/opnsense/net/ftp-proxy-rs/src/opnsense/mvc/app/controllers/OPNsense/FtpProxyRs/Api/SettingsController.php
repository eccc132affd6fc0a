<?php

/*
 * CRUD of ftp-proxy instances. ISC License, the ftp-proxy developers.
 */

namespace OPNsense\FtpProxyRs\Api;

use OPNsense\Base\ApiMutableModelControllerBase;

class SettingsController extends ApiMutableModelControllerBase
{
    protected static $internalModelName = 'ftpproxyrs';
    protected static $internalModelClass = 'OPNsense\FtpProxyRs\FtpProxyRs';

    public function searchInstanceAction()
    {
        return $this->searchBase(
            'instances.instance',
            ['enabled', 'listenaddress', 'listenport', 'reverseaddress', 'description']
        );
    }

    public function getInstanceAction($uuid = null)
    {
        return $this->getBase('instance', 'instances.instance', $uuid);
    }

    public function addInstanceAction()
    {
        return $this->addBase('instance', 'instances.instance');
    }

    public function setInstanceAction($uuid)
    {
        return $this->setBase('instance', 'instances.instance', $uuid);
    }

    public function delInstanceAction($uuid)
    {
        return $this->delBase('instances.instance', $uuid);
    }

    public function toggleInstanceAction($uuid, $enabled = null)
    {
        return $this->toggleBase('instances.instance', $uuid, $enabled);
    }
}

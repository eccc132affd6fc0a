<?php

/*
 * Start, stop and reconfigure of every instance (configd ftpproxyrs ...).
 * ISC License, the ftp-proxy developers.
 */

namespace OPNsense\FtpProxyRs\Api;

use OPNsense\Base\ApiMutableServiceControllerBase;
use OPNsense\Core\Backend;

class ServiceController extends ApiMutableServiceControllerBase
{
    protected static $internalServiceClass = '\OPNsense\FtpProxyRs\FtpProxyRs';
    protected static $internalServiceTemplate = 'OPNsense/FtpProxyRs';
    protected static $internalServiceEnabled = 'instances';
    protected static $internalServiceName = 'ftpproxyrs';

    /* Enabled when any instance is. */
    protected function serviceEnabled()
    {
        foreach ($this->getModel()->instances->instance->iterateItems() as $inst) {
            if ((string)$inst->enabled == '1') {
                return true;
            }
        }
        return false;
    }

    public function reconfigureAction()
    {
        if (!$this->request->isPost()) {
            return ['status' => 'failed'];
        }
        $backend = new Backend();
        $backend->configdRun('ftpproxyrs stop');
        $backend->configdRun('template reload OPNsense/FtpProxyRs');
        $backend->configdRun('ftpproxyrs start');
        $backend->configdRun('filter reload');
        return ['status' => 'ok'];
    }
}

<?php

/*
 * The page of ftp-proxy instances. ISC License, the ftp-proxy developers.
 */

namespace OPNsense\FtpProxyRs;

class IndexController extends \OPNsense\Base\IndexController
{
    public function indexAction()
    {
        $this->view->formDialogInstance = $this->getForm('dialogInstance');
        $this->view->pick('OPNsense/FtpProxyRs/index');
    }
}

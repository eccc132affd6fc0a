<?php
/*
 * Runs the pfSense package's ftp-proxy.inc on a sample config (JSON file,
 * argv[1]: the list of instances as pfSense stores them) with stand-ins for
 * pfSense's includes, and prints what the package would produce:
 *   ARGS <n> <flags>       the daemon's flags of enabled instance n
 *   ERR <n> <message>      what validation says of instance n
 *   then the rc.conf.d text, a line "--nat--", the nat rules, "--filter--",
 *   the filter rules.
 */
set_include_path(__DIR__ . '/pfsense-stubs');
require_once($argv[2]);
$instances = json_decode(file_get_contents($argv[1]), true);
$GLOBALS['config'] = array('installedpackages' => array('ftpproxy' => array('config' => $instances)));
foreach (ftpproxy_instances() as $n => $inst) {
	$others = ftpproxy_instances();
	unset($others[$n]);
	foreach (ftpproxy_errors($inst, $others) as $e) {
		echo "ERR $n $e\n";
	}
	if (ftpproxy_enabled($inst)) {
		echo "ARGS $n " . ftpproxy_args($inst) . "\n";
	}
}
echo ftpproxy_rcconf(ftpproxy_instances());
echo "--nat--\n" . ftpproxy_generate_rules('nat');
echo "--filter--\n" . ftpproxy_generate_rules('filter');

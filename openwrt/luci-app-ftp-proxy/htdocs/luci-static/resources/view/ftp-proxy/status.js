'use strict';
'require view';
'require dom';
'require poll';
'require rpc';

// Status → FTP Proxy: every running instance and its live sessions, from
// the ubus object ftp-proxy (the rpcd plugin asks each instance's status
// socket). Read-only: the ACL luci-app-ftp-proxy-status grants only this.

var callStatus = rpc.declare({
	object: 'ftp-proxy',
	method: 'status',
	expect: { instances: [] }
});

function bytes(n) {
	var units = [ 'B', 'KiB', 'MiB', 'GiB', 'TiB' ], i = 0;
	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}
	return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
}

function span(s) {
	if (s < 60) return '%ds'.format(s);
	if (s < 3600) return '%dm%ds'.format(s / 60, s % 60);
	if (s < 86400) return '%dh%dm'.format(s / 3600, s % 3600 / 60);
	return '%dd%dh'.format(s / 86400, s % 86400 / 3600);
}

function table(titles, rows, empty) {
	var t = E('table', { 'class': 'table' }, [
		E('tr', { 'class': 'tr table-titles' }, titles.map(function(title) {
			return E('th', { 'class': 'th' }, title);
		}))
	]);
	if (!rows.length)
		t.appendChild(E('tr', { 'class': 'tr placeholder' }, [
			E('td', { 'class': 'td', 'colspan': titles.length }, E('em', {}, empty))
		]));
	rows.forEach(function(row) {
		t.appendChild(E('tr', { 'class': 'tr' }, row.map(function(cell) {
			return E('td', { 'class': 'td' }, cell);
		})));
	});
	return t;
}

function instanceView(doc) {
	var i = doc.instance || {}, t = doc.totals || {};
	if (doc.error)
		return E('div', { 'class': 'cbi-section' }, [
			E('h3', {}, _('Instance %s').format(i.name)),
			E('p', { 'class': 'alert-message warning' }, _('Not answering: %s').format(doc.error))
		]);
	var refused = Object.keys(t.refused || {}).filter(function(k) { return t.refused[k] > 0; })
		.map(function(k) { return '%s %d'.format(k, t.refused[k]); });
	var commands = Object.keys(t.refused_commands || {})
		.map(function(k) { return '%s %d'.format(k, t.refused_commands[k]); });
	var ports = i.proxy_ports || [ 49152, 65535 ];
	var info = table([ _('Listening'), _('Mode'), _('Sessions'), _('Proxy ports'), _('Up'), _('Data records') ], [[
		i.listen,
		(i.mode == 'reverse' ? _('reverse to %s').format(i.server) :
			_('transparent') + (i.intercept && i.intercept.length ? ' (' + i.intercept.join(', ') + ')' : '')) +
			(i.advertised ? ', ' + _('passive replies name %s').format(i.advertised) : ''),
		'%d / %d'.format(i.sessions, i.max_sessions),
		_('%d-%d (%d held)').format(ports[0], ports[1], i.ports_held || 0),
		span(i.uptime),
		i.records == 'bytes' ? _('with byte counts') : i.records == 'no-bytes' ? _('no byte counts (conntrack accounting off)') : _('off')
	]], '');
	var totals = table([ _('Sessions'), _('Data connections'), _('To clients'), _('To servers'), _('Refused'), _('Kernel errors') ], [[
		String(t.sessions),
		'%d / %d'.format(t.data_connections, t.negotiated),
		bytes(t.bytes_to_clients),
		bytes(t.bytes_to_servers),
		refused.concat(commands).join(', ') || _('none'),
		String(t.kernel_errors)
	]], '');
	var sessions = table([ _('ID'), _('Client'), _('Server'), _('Mode'), _('Proxy port'), _('Phase'), _('Age'), _('Idle'), _('Commands'), _('Data'), _('To client'), _('To server') ],
		(doc.sessions || []).map(function(s) {
			return [ String(s.id), s.client, s.server, s.mode, s.proxy_port ? String(s.proxy_port) : '-', s.phase,
				span(s.age), span(s.idle), String(s.commands), '%d / %d'.format(s.data_connections, s.negotiated),
				bytes(s.bytes_to_client), bytes(s.bytes_to_server) ];
		}), _('No sessions'));
	return E('div', { 'class': 'cbi-section', 'data-instance': i.name }, [
		E('h3', {}, _('Instance %s').format(i.name)),
		info,
		E('h4', {}, _('Since start')),
		totals,
		E('h4', {}, _('Live sessions')),
		sessions
	]);
}

// The status, or the error that kept it (no rpcd plugin, no access): the
// page says so instead of failing to render.
function fetchStatus() {
	return callStatus().catch(function(err) {
		return { error: String(err && err.message || err) };
	});
}

return view.extend({
	load: function() {
		return fetchStatus();
	},

	body: function(instances) {
		if (instances && instances.error)
			return E('p', { 'class': 'alert-message warning' },
				_('The status is not available: %s').format(instances.error));
		if (!instances || !instances.length)
			return E('p', {}, E('em', {}, _('No FTP proxy instance is running.')));
		return instances.map(instanceView);
	},

	render: function(instances) {
		var body = E('div', { 'id': 'ftp-proxy-status' }, this.body(instances));
		poll.add(L.bind(function() {
			return fetchStatus().then(L.bind(function(now) {
				dom.content(body, this.body(now));
			}, this));
		}, this), 5);
		return E([], [
			E('h2', {}, _('FTP Proxy')),
			E('div', { 'class': 'cbi-map-descr' },
				_('Running instances and their sessions, refreshed every 5 seconds. Data connections: made / negotiated; bytes are as conntrack counts them (IP bytes).')),
			body
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});

'use strict';
'require view';
'require form';
'require ui';
'require tools.widgets as widgets';

// One section per instance; each option is one ftp-proxy flag, translated
// by /etc/init.d/ftp-proxy (see openwrt/README.md for the table).

function number(min, max) {
	return function(section_id, value) {
		if (value == null || value === '')
			return true;
		var n = +value;
		if (!/^[0-9]+$/.test(value) || n < min || n > max)
			return _('Expecting a number from %d to %d').format(min, max);
		return true;
	};
}

return view.extend({
	render: function() {
		var m, s, o;

		m = new form.Map('ftp-proxy', _('FTP Proxy'),
			_('Intercepts FTP from the chosen networks, rewrites the control channel and lets the kernel NAT every data connection. Each section is an instance with its own nftables table (inet ftp-proxy-NAME).'));

		s = m.section(form.TypedSection, 'ftp-proxy', _('Instances'));
		s.addremove = true;
		s.anonymous = false;
		// The section name is the daemon's -n NAME: at most 32 characters.
		s.renderSectionAdd = function(extra_class) {
			var el = form.TypedSection.prototype.renderSectionAdd.apply(this, [ extra_class ]),
			    name = el.querySelector('.cbi-section-create-name');
			if (name)
				name.setAttribute('maxlength', '32');
			return el;
		};
		s.handleAdd = function(ev, name) {
			if (name.length > 32) {
				ui.addNotification(null, E('p', _('An instance name is at most 32 characters.')), 'error');
				return Promise.resolve();
			}
			return form.TypedSection.prototype.handleAdd.apply(this, [ ev, name ]);
		};
		s.tab('general', _('General'));
		s.tab('limits', _('Limits'));
		s.tab('advanced', _('Advanced'));

		o = s.taboption('general', form.Flag, 'enabled', _('Enabled'));
		o.default = o.enabled;
		o.rmempty = false;

		o = s.taboption('general', widgets.NetworkSelect, 'network', _('Intercept from'),
			_('FTP (tcp/21) arriving from these networks is redirected to the proxy (-i).'));
		o.multiple = true;
		o.nocreate = true;

		o = s.taboption('general', widgets.NetworkSelect, 'outbound', _('Only towards'),
			_('Proxy only to servers routed out of these networks, for example the WAN (-o).'));
		o.multiple = true;
		o.nocreate = true;

		o = s.taboption('general', form.Value, 'listen_addr', _('Listen address'),
			_('Default: the first intercepted network\'s address (-b).'));
		o.datatype = 'ipaddr';

		o = s.taboption('general', form.Value, 'listen_port', _('Listen port'), _('-p'));
		o.datatype = 'port';
		o.placeholder = '8021';

		o = s.taboption('general', form.Flag, 'ipv6', _('IPv6'),
			_('IPv6 mode: only EPSV and EPRT (-6).'));

		o = s.taboption('general', form.Flag, 'anonymous_only', _('Anonymous only'),
			_('Only USER ftp or anonymous (-A).'));

		o = s.taboption('general', form.Value, 'reverse_addr', _('Reverse mode server'),
			_('Always connect to this server instead of intercepting (-R).'));
		o.datatype = 'host';

		o = s.taboption('general', form.Value, 'reverse_port', _('Reverse mode port'), _('-P'));
		o.datatype = 'port';
		o.placeholder = '21';
		o.depends({ reverse_addr: /.+/ });

		o = s.taboption('general', form.Value, 'advertised_addr', _('Advertised address'),
			_('When a NAT in front of this router publishes the server: its public address, named in passive replies (-e).'));
		o.datatype = 'ipaddr';
		o.depends({ reverse_addr: /.+/ });

		o = s.taboption('limits', form.Value, 'max_sessions', _('Sessions'),
			_('Concurrent sessions, 1 to 500 (-m).'));
		o.placeholder = '100';
		o.validate = number(1, 500);

		o = s.taboption('limits', form.Value, 'max_per_client', _('Sessions per client'),
			_('Sessions one client address may hold, 1 to 500 (-M).'));
		o.placeholder = '32';
		o.validate = number(1, 500);

		o = s.taboption('limits', form.Value, 'proxy_ports', _('Proxy ports'),
			_('Data ports handed out, LOW-HIGH within 1024 to 65535, at least 8: what a NAT in front forwards (-E).'));
		o.placeholder = '49152-65535';
		o.validate = function(section_id, value) {
			if (value == null || value === '')
				return true;
			var m = /^([0-9]{4,5})-([0-9]{4,5})$/.exec(value),
			    low = m ? +m[1] : 0, high = m ? +m[2] : 0;
			if (m && low >= 1024 && high <= 65535 && high - low >= 7)
				return true;
			return _('LOW-HIGH, ports 1024 to 65535, at least 8 of them');
		};

		o = s.taboption('limits', form.Value, 'timeout', _('Idle timeout'),
			_('Seconds, 1 to 86400 (-t).'));
		o.placeholder = '86400';
		o.validate = number(1, 86400);

		o = s.taboption('advanced', form.Value, 'source_addr', _('Source address'),
			_('Source address of control connections to servers (-a).'));
		o.datatype = 'ipaddr';

		o = s.taboption('advanced', form.Value, 'ha_sync', _('HA session failover'),
			_('For a keepalived pair: this router\'s and the peer\'s address on the sync link, as LOCAL,PEER (-H). Needs the LAN VIP as listen address and the WAN VIP as source address.'));
		o.placeholder = '198.18.9.1,198.18.9.2';
		o.validate = function(section_id, value) {
			if (value == null || value === '')
				return true;
			var p = value.split(','),
			    addr = function(a) { return /^[0-9]{1,3}(\.[0-9]{1,3}){3}$/.test(a) || /^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$/.test(a); };
			if (p.length != 2 || p[0] === p[1] || !addr(p[0]) || !addr(p[1]))
				return _('Two different numeric addresses, LOCAL,PEER');
			return true;
		};

		o = s.taboption('advanced', form.Flag, 'port20', _('Active data from port 20'), _('-r'));

		o = s.taboption('advanced', form.Value, 'tag', _('Conntrack mark'),
			_('Set on data connections (-T); the firewall rule then accepts exactly these.'));
		o.validate = function(section_id, value) {
			if (value == null || value === '') {
				if (this.section.formvalue(section_id, 'verbose') == '2')
					return _('Logging every packet needs a conntrack mark');
				return true;
			}
			// 1..4294967295, as the daemon's -T: 0 and 0x0 are no mark.
			var m = /^(?:0[xX]([0-9a-fA-F]{1,8})|([1-9][0-9]{0,9}))$/.exec(value),
			    n = m ? (m[1] != null ? parseInt(m[1], 16) : +m[2]) : 0;
			if (n >= 1 && n <= 4294967295)
				return true;
			return _('Expecting a number from 1 to 4294967295, decimal or 0x hexadecimal');
		};

		o = s.taboption('advanced', form.Value, 'queue', _('Traffic class'),
			_('tc class MAJOR:MINOR for data packets; needs a mark (-q).'));
		o.depends({ tag: /.+/ });

		o = s.taboption('advanced', form.ListValue, 'log_level', _('Log level'), _('-D'));
		o.value('0', _('Emergency'));
		o.value('1', _('Alert'));
		o.value('2', _('Critical'));
		o.value('3', _('Error'));
		o.value('4', _('Warning'));
		o.value('5', _('Notice'));
		o.value('6', _('Info'));
		o.value('7', _('Debug'));
		o.default = '5';

		o = s.taboption('advanced', form.ListValue, 'verbose', _('Log data connections'), _('-v'));
		o.value('0', _('No'));
		o.value('1', _('First packet'));
		o.value('2', _('Every packet (needs a mark)'));
		o.default = '0';
		// The daemon refuses -vv without -T.
		o.validate = function(section_id, value) {
			var tag = this.section.formvalue(section_id, 'tag');
			if (value == '2' && (tag == null || tag === ''))
				return _('Every packet needs a conntrack mark (Advanced: Conntrack mark)');
			return true;
		};

		return m.render();
	}
});

// Renders the app's two LuCI views with LuCI's own runtime in headless
// Chromium, against standin.py, and checks what an admin gets:
// - status (ACL luci-app-ftp-proxy-status only): no console error, one
//   table row per session of the running proxy, refreshed by polling;
// - configuration (ACL luci-app-ftp-proxy only): no console error, every
//   option the init script reads, the network picker filled, the small
//   defects fixed (name length, verbose 2 without tag, tag 0x0), and
//   Save & Apply sending exactly the expected uci calls.
// Usage: node render.mjs STATUS_URL CONFIG_URL SESSIONS SCREENSHOT CALLS
import { chromium } from 'playwright-core';
import fs from 'node:fs';

const [statusUrl, configUrl, sessions, shot, callsFile] = process.argv.slice(2);
const failures = [];
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures.push(what); };

const browser = await chromium.launch({
	executablePath: '/usr/bin/chromium',
	args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
		'--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function open(url) {
	const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
	const errors = [];
	page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
	page.on('pageerror', e => errors.push(String(e)));
	page.on('response', r => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
	await page.goto(url);
	return { page, errors };
}

// Status view.
{
	const { page, errors } = await open(statusUrl);
	await page.waitForSelector('#ftp-proxy-status .cbi-section table', { timeout: 15000 });
	const rows = async () => page.$$eval('#ftp-proxy-status .cbi-section table:last-of-type tr.tr:not(.table-titles):not(.placeholder)', r => r.length);
	check(await rows() == +sessions, `status: ${sessions} session rows (got ${await rows()})`);
	const text = await page.textContent('#ftp-proxy-status');
	check(/Instance luci-demo/.test(text), 'status: the instance is shown');
	check(/passive/.test(text), 'status: a session in passive mode is shown');
	check(/50000-50099 \(1 held\)/.test(text), 'status: the proxy-port range and the port its passive session holds');
	// Polling: the idle times move on within two poll intervals.
	const before = await page.$$eval('#ftp-proxy-status table:last-of-type tr.tr td:nth-child(8)', c => c.map(x => x.textContent).join());
	await page.waitForTimeout(11000);
	const after = await page.$$eval('#ftp-proxy-status table:last-of-type tr.tr td:nth-child(8)', c => c.map(x => x.textContent).join());
	check(before !== after, `status: refreshed by polling (${before} -> ${after})`);
	await page.screenshot({ path: shot, fullPage: true });
	check(errors.length == 0, `status: no console error ${JSON.stringify(errors)}`);
	await page.close();
}

// Configuration view.
{
	const { page, errors } = await open(configUrl);
	await page.waitForSelector('.cbi-section-create-name', { timeout: 15000 });
	const options = await page.$$eval('[data-name]', e => e.map(x => x.getAttribute('data-name')));
	for (const o of ['enabled', 'network', 'outbound', 'listen_addr', 'listen_port', 'ipv6', 'anonymous_only',
		'reverse_addr', 'reverse_port', 'max_sessions', 'max_per_client', 'timeout', 'source_addr',
		'port20', 'tag', 'queue', 'log_level', 'verbose', 'proxy_ports'])
		check(options.includes(o), `config: option ${o} is there`);
	// The network picker lists the networks (needs the network calls in the ACL).
	await page.click('[data-name="network"] .cbi-dropdown');
	const nets = await page.$$eval('[data-name="network"] li[data-value]', l => l.map(x => x.getAttribute('data-value')));
	check(nets.includes('lan') && nets.includes('guest'), `config: network picker lists lan and guest (${nets})`);
	await page.keyboard.press('Escape');
	// A name over 32 characters cannot be typed, nor added.
	await page.fill('.cbi-section-create-name', 'a'.repeat(40));
	const typed = await page.inputValue('.cbi-section-create-name');
	check(typed.length == 32, `config: new name cut at 32 characters (${typed.length})`);
	// Proxy ports: LOW-HIGH within 1024..65535, at least 8.
	const limits = await page.$('li[data-tab="limits"] a');
	if (limits) await limits.click();
	const range = '[data-name="proxy_ports"] input';
	for (const [v, ok] of [['50000-50099', true], ['50000-50006', false], ['1023-2000', false], ['50000', false], ['60000-65535', true], ['']]) {
		await page.fill(range, v);
		await page.dispatchEvent(range, 'keyup');
		await page.dispatchEvent(range, 'blur');
		const invalid = await page.$eval(range, e => e.classList.contains('cbi-input-invalid'));
		check(invalid == (ok === false), `config: proxy_ports ${v || '(empty)'} ${ok === false ? 'refused' : 'accepted'}`);
	}
	// Tag 0x0 is refused, as 0 is.
	const advanced = await page.$('li[data-tab="advanced"] a');
	if (advanced) await advanced.click();
	const tag = '[data-name="tag"] input';
	for (const [v, ok] of [['0', false], ['0x0', false], ['0x2a', true], ['4294967296', false], ['7', true]]) {
		await page.fill(tag, v);
		await page.dispatchEvent(tag, 'keyup');
		await page.dispatchEvent(tag, 'blur');
		const invalid = await page.$eval(tag, e => e.classList.contains('cbi-input-invalid'));
		check(invalid == !ok, `config: tag ${v} ${ok ? 'accepted' : 'refused'}`);
	}
	// verbose 2 without a tag is refused.
	await page.fill(tag, '');
	await page.dispatchEvent(tag, 'keyup');
	await page.selectOption('[data-name="verbose"] select', '2');
	await page.dispatchEvent('[data-name="verbose"] select', 'change');
	const vinvalid = await page.$eval('[data-name="verbose"] select', e => e.classList.contains('cbi-input-invalid'));
	check(vinvalid, 'config: verbose 2 without a tag refused');
	await page.fill(tag, '7');
	await page.dispatchEvent(tag, 'keyup');
	await page.selectOption('[data-name="verbose"] select', '1');
	await page.dispatchEvent('[data-name="verbose"] select', 'change');
	// Save & Apply sends what changed: tag 7 and verbose 1 on section main.
	fs.writeFileSync(callsFile, '');
	await page.click('.cbi-page-actions .cbi-button-apply');
	await page.waitForTimeout(3000);
	const calls = fs.readFileSync(callsFile, 'utf8').trim().split('\n').filter(Boolean).map(JSON.parse);
	// LuCI writes a rmempty=false Flag (enabled) with its value even when
	// unchanged: allowed, with the value it had.
	const sets = calls.filter(c => c.method == 'set');
	const want = { tag: '7', verbose: '1' }, unchanged = { enabled: '1' };
	const exact = sets.length == 1 && sets[0].args.config == 'ftp-proxy' && sets[0].args.section == 'main' &&
		Object.entries(sets[0].args.values).every(([k, v]) => want[k] === v || unchanged[k] === v) &&
		Object.entries(want).every(([k, v]) => sets[0].args.values[k] === v);
	check(exact, `config: Save & Apply sent uci set ftp-proxy.main tag=7 verbose=1 (${JSON.stringify(sets)})`);
	check(!calls.some(c => c.method == 'delete'), `config: no uci delete (${JSON.stringify(calls.filter(c => c.method == 'delete'))})`);
	check(calls.some(c => c.method == 'apply'), 'config: uci apply sent');
	check(errors.length == 0, `config: no console error ${JSON.stringify(errors)}`);
	await page.close();
}

await browser.close();
console.log(failures.length ? `${failures.length} checks failed` : 'all checks passed');
process.exit(failures.length ? 1 : 0);

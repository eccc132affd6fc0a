#!/bin/sh
# Renders both LuCI views with LuCI's own runtime in headless Chromium.
#   LUCI_HTDOCS=DIR tests/luci/run.sh [SCREENSHOT.png]
# DIR holds luci-static/resources (LuCI's modules/luci-base/htdocs) and
# luci-static/bootstrap (the bootstrap theme's htdocs), from a checkout of
# LuCI; they are not part of this project. Needs root (the proxy's
# nftables table), python3, node, chromium; runs `npm install` here.
# A proxy with three sessions (one passive) runs on loopback meanwhile.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${LUCI_HTDOCS:?set LUCI_HTDOCS to LuCI htdocs (see the header)}"
shot="${1:-$here/luci-status.png}"
bin="$root/target/debug/ftp-proxy"
[ -x "$bin" ] || (cd "$root" && cargo build -q)
work=$(mktemp -d)
trap 'kill $(cat "$work"/pids 2>/dev/null) 2>/dev/null; rm -rf "$work"' EXIT
[ -d "$here/node_modules/playwright-core" ] || (cd "$here" && npm install --no-audit --no-fund -s)

# A scripted FTP server and the proxy (reverse mode) on loopback.
python3 "$here/../clients/fake_ftpd.py" 127.0.0.1 18121 & echo $! >>"$work/pids"
"$bin" -d -n luci-demo -b 127.0.0.1 -p 18021 -R 127.0.0.1 -P 18121 -E 50000-50099 2>"$work/proxy.log" & echo $! >>"$work/pids"
sleep 1
python3 "$here/../clients/hold_sessions.py" 127.0.0.1 18021 3 60 & echo $! >>"$work/pids"
sleep 1

port=18080
for acl in luci-app-ftp-proxy-status luci-app-ftp-proxy; do
	port=$((port + 1))
	ACL_GROUPS=$acl FTP_PROXY_BIN=$bin CALLS="$work/calls" LUCI_HTDOCS=$LUCI_HTDOCS \
		python3 "$here/standin.py" $port & echo $! >>"$work/pids"
done
sleep 1
node "$here/render.mjs" "http://127.0.0.1:18081/cgi-bin/luci/admin/status/ftp-proxy" \
	"http://127.0.0.1:18082/cgi-bin/luci/admin/services/ftp-proxy" 3 "$shot" "$work/calls"

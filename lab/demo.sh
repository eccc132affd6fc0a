#!/usr/bin/env bash
# Shows ftp-proxy doing its job: builds it, makes a client, a router and a
# server in network namespaces (198.18.0.0/15 only), shows that the client
# cannot reach the FTP server on its own, then starts ftp-proxy on the
# router and downloads a file through it. Run as root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
[ "${1:-}" = --no-setup ] || bash "$here/setup.sh"

echo "== building ftp-proxy (release)"
cargo build --release --quiet
bin=$PWD/target/release/ftp-proxy

lab=d$(( $$ % 100000 ))
dir=$(mktemp -d /tmp/ftp-proxy-demo.XXXXXX)
cleanup() {
    [ -n "${proxy:-}" ] && kill "$proxy" 2>/dev/null && wait "$proxy" 2>/dev/null || true
    "$here/lab.sh" down "$lab"
    rm -rf "$dir"
}
trap cleanup EXIT
"$here/lab.sh" up "$lab"
"$here/lab.sh" server "$lab" vsftpd "$dir"
head -c 5000000 /dev/urandom > "$dir/root/file.bin"
chmod 644 "$dir/root/file.bin"
C="ip netns exec fp-$lab-c"

echo "== client 198.18.1.2 -> server 198.19.2.2, no proxy (the server has no route back):"
if $C curl -sS --connect-timeout 3 --max-time 3 -o /dev/null ftp://198.19.2.2/file.bin; then
    echo "unexpected: the transfer worked without the proxy" >&2; exit 1
fi

echo "== starting ftp-proxy on the router: intercepting tcp/21 from the client side"
# Conntrack accounting gives each data connection's record its byte counts.
ip netns exec "fp-$lab-r" sysctl -qw net.netfilter.nf_conntrack_acct=1
mkdir -m 0700 "$dir/run"
ip netns exec "fp-$lab-r" "$bin" -d -D 6 -n demo -b 198.18.1.1 -i "fp$lab-rc" -s "$dir/run/demo.sock" 2> "$dir/proxy.log" &
proxy=$!
for _ in $(seq 50); do grep -q "listening on" "$dir/proxy.log" && break; sleep 0.1; done

for mode in passive active; do
    flags=(); [ $mode = active ] && flags=(-P -)
    $C curl -sS --max-time 20 "${flags[@]}" -o "$dir/got-$mode.bin" ftp://198.19.2.2/file.bin
    want=$(sha256sum < "$dir/root/file.bin" | cut -d' ' -f1)
    got=$(sha256sum < "$dir/got-$mode.bin" | cut -d' ' -f1)
    [ "$want" = "$got" ] || { echo "$mode download differs" >&2; exit 1; }
    echo "== $mode download through the proxy: 5 MB, sha256 $got matches"
done

# A session left open, so the status has a row to show.
$C python3 "$here/../tests/clients/hold_sessions.py" 198.19.2.2 21 1 3 &
holder=$!
sleep 1
echo "== ftp-proxy -S (the daemon's status socket):"
"$bin" -S "$dir/run/demo.sock"
wait "$holder"
echo "== the proxy's nftables table on the router (data connections are NATed by the kernel):"
ip netns exec "fp-$lab-r" nft list table inet ftp-proxy-demo
echo "== proxy log:"
cat "$dir/proxy.log"
kill "$proxy"; wait "$proxy" || true; proxy=
echo "== after SIGTERM, tables left on the router (the keeper holds the NAT hooks for transfers in flight until the next start): [$(ip netns exec "fp-$lab-r" nft list tables)]"

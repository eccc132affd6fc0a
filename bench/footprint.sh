#!/usr/bin/env bash
# Size and footprint (issue 5): stripped sizes of the binaries built by
# openwrt/cross.sh (run it first), and the resident memory of the running
# daemon with 0, 100 and 500 idle sessions, for the static musl x86_64
# binary (as on a router) and the native dynamic (glibc) release build. Sessions are real: a client in one namespace, the proxy
# (reverse mode) in another, a server that greets and waits in a third.
# Root, after lab/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/cross
name=fpf$$
dir=$(mktemp -d)
lab=lab/lab.sh
cleanup() { pkill -f "$dir/" 2>/dev/null || true; $lab down "$name" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
$lab up "$name" >/dev/null

cat > "$dir/server.py" <<'PY'
import asyncio
async def session(r, w):
    w.write(b"220 idle server\r\n")
    await w.drain()
    while await r.read(512):
        pass
async def main():
    s = await asyncio.start_server(session, "198.19.2.2", 21, backlog=1024)
    await s.serve_forever()
asyncio.run(main())
PY
cat > "$dir/client.py" <<'PY'
import socket, sys, time, os
d = sys.argv[1]
socks = []
for target in (100, 500):
    while len(socks) < target:
        s = socket.create_connection(("198.18.1.1", 8021), timeout=10)
        socks.append(s)
    for s in socks[-(target - (0 if target == 100 else 100)):]:
        assert s.recv(100).startswith(b"220"), "no greeting"
    open(os.path.join(d, str(target)), "w").close()
    while not os.path.exists(os.path.join(d, "go%d" % target)):
        time.sleep(0.05)
PY
ip netns exec "fp-$name-s" python3 "$dir/server.py" &
sleep 0.5

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wait_file() { for _ in $(seq 200); do [ -e "$1" ] && return 0; sleep 0.05; done; echo "timeout waiting for $1" >&2; exit 1; }

cargo build -q --release
cp target/release/ftp-proxy "$out/ftp-proxy-x86_64-dynamic-glibc"
printf '%-36s %10s\n' binary bytes
for b in "$out"/ftp-proxy-*; do printf '%-36s %10s\n' "$(basename "$b")" "$(stat -c %s "$b")"; done
echo
printf '%-34s %9s %9s %9s\n' "resident memory (VmRSS, KiB)" 0 100 500
# The static one last: the -m loop below runs it.
for kind in x86_64-dynamic-glibc x86_64-unknown-linux-musl; do
    bin="$out/ftp-proxy-$kind"
    [ -x "$bin" ] || { echo "no $bin: run openwrt/cross.sh first" >&2; exit 1; }
    cp "$bin" "$dir/ftp-proxy"
    rm -f "$dir"/100 "$dir"/500 "$dir"/go*
    ip netns exec "fp-$name-r" "$dir/ftp-proxy" -d -D 4 -b 198.18.1.1 -R 198.19.2.2 -m 500 -M 500 2>"$dir/proxy.log" &
    pid=$!
    sleep 0.5
    r0=$(rss $pid)
    ip netns exec "fp-$name-c" python3 "$dir/client.py" "$dir" &
    cpid=$!
    wait_file "$dir/100"; sleep 0.3; r100=$(rss $pid); touch "$dir/go100"
    wait_file "$dir/500"; sleep 0.3; r500=$(rss $pid); touch "$dir/go500"
    wait $cpid
    kill $pid; wait $pid || true
    printf '%-34s %9s %9s %9s\n' "$kind" "$r0" "$r100" "$r500"
done
echo
echo "(the session table is sized and touched at start: memory follows -m,"
echo " not the number of sessions; kernel socket buffers are not in VmRSS)"
printf '%-34s %9s\n' "static, no session, -m" "VmRSS KiB"
for m in 1 100 500; do
    ip netns exec "fp-$name-r" "$dir/ftp-proxy" -d -D 4 -b 198.18.1.1 -R 198.19.2.2 -m $m -M $m 2>"$dir/proxy.log" &
    pid=$!
    sleep 0.5
    printf '%-34s %9s\n' "$m" "$(rss $pid)"
    kill $pid; wait $pid || true
done

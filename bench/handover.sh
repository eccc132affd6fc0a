#!/usr/bin/env bash
# Live handover with 500 sessions (issue 23): the release binary (or the
# one given) serves 499 idle sessions and one that sends NOOP back to
# back; SIGUSR2 hands them all over. Reports the time from the signal to
# the new image serving, the longest NOOP round trip across it (what a
# user can notice), and that every session answers afterwards. Sessions
# are real: a client in one namespace, the proxy (reverse mode, as a
# capable user: no chroot) in another, a server that answers NOOP in a
# third. Root, after lab/setup.sh. Usage: bench/handover.sh [BINARY] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
rounds=${2:-5}
name=fph$$
dir=$(mktemp -d)
chmod 755 "$dir"
lab=lab/lab.sh
cleanup() { pkill -f "$dir/" 2>/dev/null || true; $lab down "$name" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
if [ -z "$bin" ]; then
    cargo build -q --release
    bin=target/release/ftp-proxy
fi
cp "$bin" "$dir/ftp-proxy"
$lab up "$name" >/dev/null

cat > "$dir/server.py" <<'PY'
import asyncio
async def session(r, w):
    w.write(b"220 lab server\r\n")
    await w.drain()
    while True:
        line = await r.readline()
        if not line:
            return
        w.write(b"200 ok\r\n")
        await w.drain()
async def main():
    s = await asyncio.start_server(session, "198.19.2.2", 21, backlog=1024)
    await s.serve_forever()
asyncio.run(main())
PY
cat > "$dir/client.py" <<'PY'
import os, socket, sys, time
d, n = sys.argv[1], int(sys.argv[2])
def reply(s):
    buf = b""
    while not buf.endswith(b"\r\n"):
        c = s.recv(512)
        if not c:
            raise SystemExit("connection closed")
        buf += c
    return buf
socks = [socket.create_connection(("198.18.1.1", 8021), timeout=10) for _ in range(n)]
for s in socks:
    assert reply(s).startswith(b"220")
probe = socks[0]
probe.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
open(os.path.join(d, "ready"), "w").close()
worst, rtts, t_end = 0.0, [], time.monotonic() + 3.0
while time.monotonic() < t_end:
    t = time.monotonic()
    probe.sendall(b"NOOP\r\n")
    assert reply(probe).startswith(b"200")
    rtts.append(time.monotonic() - t)
for s in socks:
    s.sendall(b"NOOP\r\n")
ok = sum(reply(s).startswith(b"200") for s in socks)
rtts.sort()
print("%d %.3f %.3f %d" % (ok, rtts[len(rtts) // 2] * 1000, rtts[-1] * 1000, len(rtts)))
PY
ip netns exec "fp-$name-s" python3 "$dir/server.py" &
sleep 0.5
wrap="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+net_admin --ambient-caps=+net_admin"
echo "| round | sessions | signal → serving (ms) | state written (ms) | NOOP p50 (ms) | NOOP max across it (ms) | answered after |"
echo "|---|---|---|---|---|---|---|"
for r in $(seq "$rounds"); do
    rm -f "$dir/ready"
    # shellcheck disable=SC2086
    ip netns exec "fp-$name-r" $wrap "$dir/ftp-proxy" -d -D 6 -b 198.18.1.1 -R 198.19.2.2 -m 500 -M 500 2>"$dir/proxy.log" &
    pid=$!
    sleep 0.5
    ip netns exec "fp-$name-c" python3 "$dir/client.py" "$dir" 500 >"$dir/client.out" &
    cpid=$!
    for _ in $(seq 400); do [ -e "$dir/ready" ] && break; sleep 0.05; done
    [ -e "$dir/ready" ] || { echo "sessions did not open" >&2; cat "$dir/proxy.log" >&2; exit 1; }
    sleep 1
    t0=$(date +%s%N)
    kill -USR2 "$pid"
    for _ in $(seq 2000); do grep -q "sessions handed over" "$dir/proxy.log" && break; sleep 0.001; done
    t1=$(date +%s%N)
    grep -q "serving 500 sessions handed over" "$dir/proxy.log" || { echo "no handover:" >&2; cat "$dir/proxy.log" >&2; exit 1; }
    wait $cpid
    written=$(sed -n 's/.*live handover: [0-9]* sessions written in \([0-9]*\) ms.*/\1/p' "$dir/proxy.log")
    read -r ok p50 worst _count <"$dir/client.out"
    echo "| $r | 500 | $(( (t1 - t0) / 1000000 )) | $written | $p50 | $worst | $ok of 500 |"
    kill "$pid"; wait "$pid" || true
done

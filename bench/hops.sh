#!/usr/bin/env bash
# Where a PASV+LIST and a PORT+LIST spend their time, hop by hop, for the
# kernel helper and for ftp-proxy: python ftplib against pyftpdlib (the
# control rows of bench/run.sh), 1,000 listings each, captured in the
# router (tcpdump writing raw packets, the cheapest capture; it still
# slows every contender a little). Prints markdown tables (bench/hops.py)
# and saves them in bench/results/. Root, after lab/setup.sh; about a minute.
# Usage: bench/hops.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/hops.sh: run as root" >&2; exit 1; }
count=${1:-1000}
command -v tcpdump >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tcpdump >/dev/null
cargo build -q --release
BIN=${BENCH_BIN:-$PWD/target/release/ftp-proxy}
PY=/usr/bin/python3
. bench/contenders.sh
bench_lab_up fph
mkdir -p "$dir/root"
for i in $(seq 20); do : > "$dir/root/file$i.txt"; done
ip netns exec "$S" "$PY" bench/pyftpd.py 198.19.2.2 21 "$dir/root" 2>"$dir/pyftpd.log" &
wait_port "$S" 21
for mode in pasv port; do
    for m in helper ftp-proxy; do
        echo "== $m $mode" >&2
        "on_$m"
        ip netns exec "$R" tcpdump -i any -s 128 -B 65536 -w "$dir/$m-$mode.pcap" 2>/dev/null &
        pid_dump=$!
        sleep 1
        pid=$(pid_of "$m")
        ip netns exec "$C" timeout 120 python3 bench/control.py 198.19.2.2 21 \
            --count "$count" ${pid:+--cpu-pid $pid} "$mode" | tee "$dir/$m-$mode.json" >&2
        sleep 0.5
        kill "$pid_dump"; wait "$pid_dump" 2>/dev/null || true
        pid_dump=
        "off_$m"
        tcpdump -nn -tt -v -r "$dir/$m-$mode.pcap" 2>/dev/null > "$dir/$m-$mode.txt"
    done
done
mkdir -p bench/results
out=bench/results/$(date -u +%Y-%m-%d)-$(hostname)-hops.md
{
    echo "Hop by hop, $(date -u +%Y-%m-%d) on $(hostname) ($(nproc) CPUs), \`bash bench/hops.sh\`:"
    echo "python3 ftplib against pyftpdlib, $count listings per contender and mode,"
    echo "captured in the router."
    echo
    python3 bench/hops.py "$dir"/*-pasv.txt "$dir"/*-port.txt
    for mode in pasv port; do
        python3 -c 'import json, sys
m, f = sys.argv[1:]
v = json.load(open(f))[m]
print("ftp-proxy, %s + LIST: %.0f listings/s under the capture, %.2f wake-ups and %.0f µs CPU per listing"
      % (m.upper(), v["value"], v["wakeups"], v["cpu_us"]))' "$mode" "$dir/ftp-proxy-$mode.json"
    done
} > "$out"
cat "$out"
echo "saved: $out"

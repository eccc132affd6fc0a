#!/usr/bin/env bash
# Side-by-side benchmark (issue 7): the same client, router and vsftpd
# server in one namespace lab, one run, four ways through the router:
#   direct     plain routing, the server routes back (no NAT)
#   helper     NAT (masquerade) + the kernel's FTP helper (ct helper "ftp")
#   mod_proxy  ProFTPD mod_proxy on the router, reverse mode (data relayed
#              through user space)
#   ftp-proxy  this proxy, intercepting with -i (data NATed by the kernel)
# Then, for ftp-proxy alone: 500 sessions of listings, heap allocations per
# command, instructions per command (callgrind). Prints one markdown table
# with ratios and saves it in bench/results/. Root; about 5 minutes.
# Usage: bench/run.sh [--no-setup]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: run as root" >&2; exit 1; }
if [ "${1:-}" != --no-setup ]; then
    bash lab/setup.sh
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        proftpd-mod-proxy valgrind >/dev/null
fi
cargo build -q --release
BIN=$PWD/target/release/ftp-proxy
SIZE=${BENCH_SIZE:-$((1 << 30))}
name=fpb$$
dir=$(mktemp -d /tmp/fp-bench.XXXXXX)
lab=lab/lab.sh
C=fp-$name-c R=fp-$name-r S=fp-$name-s
CIF=fp$name-rc SIF=fp$name-rs
results=$dir/results.tsv
cleanup() {
    pkill -f "$dir/" 2>/dev/null || true
    $lab down "$name" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

$lab up "$name" >/dev/null
$lab server "$name" vsftpd "$dir" >/dev/null
truncate -s $SIZE "$dir/root/big.bin"
for i in $(seq 20); do : > "$dir/root/file$i.txt"; done

measure() { # mode host port
    echo "== $1" >&2
    ip netns exec "$C" timeout 300 python3 bench/ftpbench.py "$2" "$3" big.bin $SIZE |
        sed "s/^/$1\t/" >> "$results"
    rm -f "$dir"/root/pub/up-*.bin  # anonymous FTP may not overwrite
}

# direct: the server gets a route back, nothing translates.
ip -n "$S" route add 198.18.1.0/24 via 198.19.2.1
measure direct 198.19.2.2 21
ip -n "$S" route del 198.18.1.0/24 via 198.19.2.1

# helper: masquerade towards the server, the FTP helper assigned
# explicitly (it rewrites PORT and opens the expected connections).
ip netns exec "$R" nft -f - <<EOF
table inet fpbench {
	ct helper ftp-std { type "ftp" protocol tcp; }
	chain pre { type filter hook prerouting priority filter; iifname "$CIF" tcp dport 21 ct helper set "ftp-std"; }
	chain prenat { type nat hook prerouting priority dstnat; }
	chain post { type nat hook postrouting priority srcnat; oifname "$SIF" masquerade; }
}
EOF
measure helper 198.19.2.2 21
ip netns exec "$R" nft delete table inet fpbench

# mod_proxy: a reverse proxy on the router's client-side address.
mkdir -p "$dir/proxy-tables"
chown nobody "$dir/proxy-tables"
cat > "$dir/mod_proxy.conf" <<EOF
ServerType standalone
DefaultServer on
Port 21
DefaultAddress 198.18.1.1
User nobody
Group nogroup
PidFile $dir/mod_proxy.pid
ScoreboardFile $dir/mod_proxy.scoreboard
DelayTable none
WtmpLog off
UseReverseDNS off
TransferLog none
SystemLog $dir/mod_proxy.log
MaxInstances 200
ModulePath /usr/lib/proftpd
LoadModule mod_proxy.c
ProxyEngine on
# Its own address towards the server (else the client's side, unroutable).
ProxySourceAddress 198.19.2.1
ProxyTLSEngine off
ProxyRole reverse
ProxyTables $dir/proxy-tables
ProxyReverseServers ftp://198.19.2.2:21
ProxyDataTransferPolicy client
EOF
# Debian's mod_proxy.so needs libssl, which proftpd-core does not load.
# (awk reads all of it: an early exit would SIGPIPE ldconfig under pipefail)
ssl=$(ldconfig -p | awk '/libssl\.so\.3 / && !found {print $NF; found = 1}')
ip netns exec "$R" env LD_PRELOAD="$ssl" proftpd -n -q -c "$dir/mod_proxy.conf" \
    2>"$dir/mod_proxy.err" &
for _ in $(seq 50); do ip netns exec "$R" ss -Hltn 'sport = :21' | grep -q . && break; sleep 0.1; done
measure mod_proxy 198.18.1.1 21
pkill -f "$dir/mod_proxy.conf" || true
sleep 0.5

# ftp-proxy: intercepts tcp/21 from the client side.
ip netns exec "$R" "$BIN" -d -D 4 -b 198.18.1.1 -i "$CIF" -m 500 -M 500 2>"$dir/ftp-proxy.log" &
for _ in $(seq 50); do ip netns exec "$R" ss -Hltn 'sport = :8021' | grep -q . && break; sleep 0.1; done
measure ftp-proxy 198.19.2.2 21
pid=$(pgrep -n -f "$BIN -d -D 4 -b 198.18.1.1 -i $CIF")
rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
kill "$pid"; sleep 0.3

# Instructions per command: two runs of NOOPs under callgrind, the
# difference divided by the difference in commands (start-up cancels).
# The proxy chroots: callgrind writes its file inside the chroot, as the
# unprivileged user.
mkdir -p "$dir/cgroot"
chmod 755 "$dir/cgroot"
noops_under_callgrind() {
    : > "$dir/cgroot/cg.out"
    chown nobody "$dir/cgroot/cg.out"
    ip netns exec "$R" valgrind --tool=callgrind --vgdb=no --callgrind-out-file=/cg.out \
        "$BIN" -d -D 3 -b 198.18.1.1 -i "$CIF" -c "$dir/cgroot" 2>"$dir/cg.log" &
    for _ in $(seq 100); do grep -q listening "$dir/cg.log" && break; sleep 0.1; done
    ip netns exec "$C" python3 - "$1" <<'PY'
import ftplib, sys
f = ftplib.FTP(timeout=30)
f.connect("198.19.2.2", 21)
f.login("anonymous", "x")
for _ in range(int(sys.argv[1])):
    f.voidcmd("TYPE I")
f.quit()
PY
    pkill -TERM -f "callgrind-out-file=/cg.out $BIN" || true
    for _ in $(seq 100); do grep -q "Collected" "$dir/cg.log" && break; sleep 0.1; done
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$dir/cg.log"
}
i1=$(noops_under_callgrind 500)
i2=$(noops_under_callgrind 2500)
ipc=$(( (i2 - i1) / 2000 ))

# Heap allocations (counting allocator; 0 expected) and 500 sessions.
allocs=$(cargo test -q --release --test alloc -- --nocapture 2>/dev/null |
    sed -n 's/.*heap allocations on the proxy thread for \(.*\): \([0-9]*\)$/\2 for \1/p')
load=$(FTP_PROXY_LOAD=500:15 cargo test -q --release --test load -- --nocapture 2>/dev/null |
    grep 'sessions, ')

host=$(hostname)
date=$(date -u +%Y-%m-%d)
mkdir -p bench/results
out=bench/results/$date-$host.md
python3 - "$results" "$rss0" "$ipc" "$allocs" "$load" "$date" "$host" "$(nproc)" > "$out" <<'PY'
import json, sys
path, rss0, ipc, allocs, load, date, host, cpus = sys.argv[1:9]
m = {}
for line in open(path):
    mode, js = line.rstrip("\n").split("\t", 1)
    m[mode] = json.loads(js)
rows = [
    ("1 GiB passive download, MB/s (best of 3)", "down_mbs", "{:.0f}", True),
    ("1 GiB active upload, MB/s (best of 3)", "up_mbs", "{:.0f}", True),
    ("command round trip (TYPE I), median µs", "noop_med_us", "{:.0f}", False),
    ("command round trip (TYPE I), p99 µs", "noop_p99_us", "{:.0f}", False),
    ("PASV + LIST per second, one session", "list_per_s", "{:.0f}", True),
    ("connect + login + quit per second, sequential", "sess_seq_per_s", "{:.0f}", True),
    ("connect + login + quit per second, 50 clients", "sess_par_per_s", "{:.0f}", True),
]
modes = ["direct", "helper", "mod_proxy", "ftp-proxy"]
print(f"Benchmark {date} on {host} ({cpus} CPUs), `bash bench/run.sh`: one lab, one run,")
print("vsftpd server, python3 ftplib client; ratios are ftp-proxy ÷ peer")
print("(above 1 is better for rates, below 1 is better for latencies).\n")
print("| metric | direct | kernel helper | mod_proxy | ftp-proxy | ÷ helper | ÷ mod_proxy |")
print("|---|---:|---:|---:|---:|---:|---:|")
def cell(x, fmt):
    return "failed" if x is None else fmt.format(x)

def ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}"

for label, key, fmt, _ in rows:
    v = [m[x][key] for x in modes]
    print(f"| {label} | " + " | ".join(cell(x, fmt) for x in v)
          + f" | {ratio(v[3], v[1])} | {ratio(v[3], v[2])} |")
d = m["direct"]["noop_med_us"]
added = [None if m[x]["noop_med_us"] is None or d is None else m[x]["noop_med_us"] - d
         for x in modes[1:]]
print("| command latency added vs direct, µs | – | "
      + " | ".join(cell(x, "{:.0f}") for x in added) + " | | |")
for x in modes:
    for e in m[x].get("errors", []):
        print(f"\n{x} failed {e}")
if m["ftp-proxy"].get("errors"):
    sys.exit("ftp-proxy failed a measurement")
print()
print("ftp-proxy alone:\n")
print(f"- 500 sessions, listings passive and active in turn: {load.strip()}")
try:
    listings = int(load.split(":")[1].split("listings")[0].strip().split()[0])
    cpu = float(load.split("CPU ")[1].split(" s")[0])
    print(f"- CPU seconds per 1,000 data connections: {cpu / listings * 1000:.3f}")
except (IndexError, ValueError):
    pass
print(f"- resident memory with no session (-m 500): {rss0} KiB; bench/footprint.sh has 0/100/500")
print(f"- heap allocations per command in steady state: {allocs}")
print(f"- instructions per command (TYPE I and its reply, callgrind): {ipc}")
PY
cat "$out"
echo
echo "saved: $out"

#!/usr/bin/env bash
# Side-by-side benchmark: one namespace lab (client ── router ── server),
# one run, every contender through the same router:
#   direct     plain routing, the server routes back (no NAT)
#   helper     NAT (masquerade) + the kernel's FTP helper (ct helper "ftp")
#   mod_proxy  ProFTPD mod_proxy on the router, reverse mode (data relayed
#              through user space)
#   relay      bench/relay.c: accept, original destination, connect, copy:
#              the floor for any user-space control proxy (control rows only)
#   ftp-proxy  this proxy (data NATed by the kernel)
# relay and ftp-proxy sit behind the same nft redirect of tcp/21; ftp-proxy
# runs only in its own turns (bench/contenders.sh says why).
#
# 1. Bulk: 1 GiB passive download and active upload against vsftpd, best of
#    3, each contender once (kernel speed; stable from run to run).
# 2. Control rows against pyftpdlib (it does not fork, so its own cost does
#    not hide the proxies'), interleaved: every round runs each contender
#    in turn, ROUNDS rounds (BENCH_ROUNDS, default 7, at least 5); each
#    cell is the median over the rounds with the min–max beside it.
#    User-space contenders also get CPU µs per operation.
# 3. Syscalls per operation (strace -c -f, fixed counts, outside the timed
#    rounds because strace slows what it traces).
# 4. ftp-proxy alone: 500 sessions, heap allocations per command,
#    instructions per command (callgrind).
# Prints markdown and saves it in bench/results/. Root; about 8 minutes.
# Usage: bench/run.sh [--no-setup] [--control-only]
# BENCH_BIN=path measures another ftp-proxy binary (an older build).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: run as root" >&2; exit 1; }
setup=1 bulk=1
for a in "$@"; do
    case $a in
    --no-setup) setup= ;;
    --control-only) bulk= ;;
    *) echo "usage: bench/run.sh [--no-setup] [--control-only]" >&2; exit 2 ;;
    esac
done
if [ -n "$setup" ]; then
    bash lab/setup.sh
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        proftpd-mod-proxy valgrind python3-pyftpdlib strace gcc libc6-dev >/dev/null
fi
cargo build -q --release
BIN=${BENCH_BIN:-$PWD/target/release/ftp-proxy}
SIZE=${BENCH_SIZE:-$((1 << 30))}
ROUNDS=${BENCH_ROUNDS:-7}
[ "$ROUNDS" -ge 5 ] || { echo "BENCH_ROUNDS must be at least 5" >&2; exit 2; }
# Debian's python3 has pyftpdlib; a python3 earlier in PATH may not.
PY=/usr/bin/python3
. bench/contenders.sh
bench_lab_up fpb
bulk_tsv=$dir/bulk.tsv ctl_tsv=$dir/control.tsv sys_tsv=$dir/syscalls.tsv
: > "$bulk_tsv"; : > "$ctl_tsv"; : > "$sys_tsv"
# The raw numbers of the last run stay here (for a closer look).
raw=/tmp/fp-bench-last
rm -rf "$raw"

$lab server "$name" vsftpd "$dir" >/dev/null
truncate -s "$SIZE" "$dir/root/big.bin"
for i in $(seq 20); do : > "$dir/root/file$i.txt"; done

on_mod_proxy() { :; }
off_mod_proxy() { :; }
addr_of() { # where the client connects
    case $1 in mod_proxy) echo 198.18.1.1 ;; *) echo 198.19.2.2 ;; esac
}

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
wait_port "$R" 21
start_relay
pid_mod_proxy=$(cat "$dir/mod_proxy.pid")

# ---- 1. bulk, vsftpd ----
if [ -n "$bulk" ]; then
    for m in direct helper mod_proxy ftp-proxy; do
        echo "== bulk $m" >&2
        "on_$m"
        ip netns exec "$C" timeout 300 python3 bench/bulk.py "$(addr_of "$m")" 21 \
            big.bin "$SIZE" | sed "s/^/$m\t/" >> "$bulk_tsv"
        "off_$m"
        rm -f "$dir"/root/pub/up-*.bin  # anonymous FTP may not overwrite
    done
fi

# ---- 2. control rows, pyftpdlib, interleaved ----
pkill -f "vsftpd $dir/vsftpd.conf" || true
wait_no_port "$S" 21
ip netns exec "$S" "$PY" bench/pyftpd.py 198.19.2.2 21 "$dir/root" 2>"$dir/pyftpd.log" &
wait_port "$S" 21
contenders=(direct helper mod_proxy relay ftp-proxy)
ticks0=$(cpu_ticks)
for round in $(seq "$ROUNDS"); do
    for m in "${contenders[@]}"; do
        echo "== round $round/$ROUNDS: $m" >&2
        rows="cmd session pasv port"
        [ "$m" = relay ] && rows="cmd session"  # it relays no data connection
        "on_$m"
        pid=$(pid_of "$m")
        # shellcheck disable=SC2086 # rows are words
        ip netns exec "$C" timeout 120 python3 bench/control.py "$(addr_of "$m")" 21 \
            ${pid:+--cpu-pid $pid} $rows | sed "s/^/$m\t$round\t/" >> "$ctl_tsv"
        "off_$m"
    done
done
steal=$(steal_share "$ticks0")

# ---- 3. syscalls per operation ----
for m in mod_proxy relay ftp-proxy; do
    for row in cmd session pasv port; do
        [ "$m" = relay ] && [ "$row" != cmd ] && [ "$row" != session ] && continue
        echo "== syscalls: $m $row" >&2
        "on_$m"
        pid=$(pid_of "$m")
        out=$dir/strace-$m-$row.txt
        strace -c -f -q -o "$out" -p "$pid" &
        tracer=$!
        sleep 0.5
        n=300
        [ "$row" = cmd ] && n=1000
        ip netns exec "$C" timeout 120 python3 bench/control.py "$(addr_of "$m")" 21 \
            --count "$n" "$row" >/dev/null
        kill -INT "$tracer"; wait "$tracer" || true
        # The proxy's memory after its last row (sessions ended, -m 500).
        [ "$m" = ftp-proxy ] && rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
        "off_$m"
        # The 'total' line: calls, errors.
        awk -v m="$m" -v r="$row" -v n="$n" '
            $NF == "total" { calls = ($4 ~ /^[0-9]+$/) ? $4 : $3; errs = ($5 ~ /^[0-9]+$/) ? $5 : 0 }
            END { printf "%s\t%s\t%.1f\t%.1f\n", m, r, calls / n, errs / n }' "$out" >> "$sys_tsv"
    done
done
# ftp-proxy's calls by name, per command round trip and per session.
detail=$(for row in cmd session pasv port; do
    awk -v r="$row" -v n="$([ "$row" = cmd ] && echo 1000 || echo 300)" '
        /^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ && $NF != "total" {
            calls = $4; errs = ($6 != "") ? $5 : 0; name = $NF
            s = s sprintf(" %s %.1f", name, calls / n); if (errs > 0) s = s sprintf(" (%.1f failed)", errs / n) }
        END { print r ":" s }' "$dir/strace-ftp-proxy-$row.txt"
done)

# ---- 4. ftp-proxy alone ----
ipc=- allocs=- load=-
if [ -n "$bulk" ]; then
    # Instructions per command: two runs of commands under callgrind, the
    # difference divided by the difference in commands (start-up cancels).
    # The proxy chroots: callgrind writes its file inside the chroot, as
    # the unprivileged user.
    mkdir -p "$dir/cgroot"
    chmod 755 "$dir/cgroot"
    redirect 8022
    cmds_under_callgrind() {
        : > "$dir/cgroot/cg.out"
        chown nobody "$dir/cgroot/cg.out"
        ip netns exec "$R" valgrind --tool=callgrind --vgdb=no --callgrind-out-file=/cg.out \
            "$BIN" -d -D 3 -b 198.18.1.1 -p 8022 -n cg -c "$dir/cgroot" 2>"$dir/cg.log" &
        for _ in $(seq 100); do grep -q listening "$dir/cg.log" && break; sleep 0.1; done
        ip netns exec "$C" python3 bench/control.py 198.19.2.2 21 --count "$1" cmd >/dev/null
        pkill -TERM -f "callgrind-out-file=/cg.out $BIN" || true
        for _ in $(seq 100); do grep -q "Collected" "$dir/cg.log" && break; sleep 0.1; done
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$dir/cg.log"
    }
    i1=$(cmds_under_callgrind 500)
    i2=$(cmds_under_callgrind 2500)
    ipc=$(( (i2 - i1) / 2000 ))
    unredirect
    # Heap allocations (counting allocator; 0 expected) and 500 sessions.
    allocs=$(cargo test -q --release --test alloc -- --nocapture 2>/dev/null |
        sed -n 's/.*heap allocations on the proxy thread for \(.*\): \([0-9]*\)$/\2 for \1/p')
    load=$(FTP_PROXY_LOAD=500:15 cargo test -q --release --test load -- --nocapture 2>/dev/null |
        grep 'sessions, ')
fi

mkdir -p "$raw"
cp "$dir"/*.tsv "$dir"/strace-*.txt "$raw/"
host=$(hostname)
date=$(date -u +%Y-%m-%d)
mkdir -p bench/results
out=bench/results/$date-$host.md
python3 bench/report.py "$bulk_tsv" "$ctl_tsv" "$sys_tsv" "$detail" "$rss0" "$ipc" \
    "$allocs" "$load" "$date" "$host" "$(nproc)" "$ROUNDS" "$steal" > "$out"
cat "$out"
echo
echo "saved: $out"

#!/usr/bin/env bash
# The cost curve: how each contender's cost grows with the number of busy
# sessions. One lab, one run, vsftpd as the server (C, a process per
# session, so the server is not the first to saturate). For 1, 10, 100
# and 499 busy sessions (499 and the probe make 500, ftp-proxy's maximum
# -m), each doing PASV+LIST or PORT+LIST in a loop (bench/busy.c), with
# one more session sending NOOP every 10 ms, for each of
#   helper     the kernel's FTP helper (NAT, no process)
#   relay      bench/relay.c, control relayed by a process, data routed
#              directly (the server routes back and accepts data
#              connections from and to addresses other than the control
#              connection's: pasv_promiscuous, port_promiscuous)
#   ftp-proxy  this proxy
# it records listings per second, CPU µs per listing (the whole machine:
# client, server, router and kernel; and the proxy process alone), the
# probe's p50/p99 NOOP round trip, and the proxy process's peak RSS.
# Contenders are interleaved at every point, ROUNDS rounds (CURVE_ROUNDS,
# default 3); each cell is the median. Prints markdown, saves it and a
# PNG plot (Debian's python3-matplotlib) in bench/results/. Root; about 6 minutes.
# Usage: bench/curve.sh [--no-setup]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/curve.sh: run as root" >&2; exit 1; }
if [ "${1:-}" != --no-setup ]; then
    bash lab/setup.sh
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        gcc libc6-dev python3-matplotlib >/dev/null
fi
cargo build -q --release
BIN=${BENCH_BIN:-$PWD/target/release/ftp-proxy}
SECS=${CURVE_SECS:-5}
ROUNDS=${CURVE_ROUNDS:-3}
POINTS=${CURVE_POINTS:-"1 10 100 499"}
. bench/contenders.sh
bench_lab_up fpc
tsv=$dir/curve.tsv
: > "$tsv"
$lab server "$name" vsftpd "$dir" >/dev/null
for i in $(seq 20); do : > "$dir/root/file$i.txt"; done
# The relay's data goes straight between client and server, which vsftpd
# refuses by default (it checks data connections against the control
# connection's address). The same server for everyone.
pkill -f "vsftpd $dir/vsftpd.conf" || true
wait_no_port "$S" 21
# Thousands of passive listeners a second need more than the lab's 1,000
# ports (each leaves a TIME_WAIT socket).
printf 'pasv_promiscuous=YES\nport_promiscuous=YES\npasv_min_port=10000\npasv_max_port=40000\n' >> "$dir/vsftpd.conf"
vs=/usr/sbin/vsftpd
[ -x "$vs" ] || vs=/opt/vsftpd/usr/sbin/vsftpd
ip netns exec "$S" "$vs" "$dir/vsftpd.conf" >"$dir/vsftpd.log" 2>&1 &
wait_port "$S" 21
gcc -O2 -o "$dir/busy" bench/busy.c
start_relay
relay_data=direct

busy_cpu() { # ticks of all CPUs at work: not idle, iowait or steal
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat
}
# Empty for a process that is gone: still_running says how it ended.
proc_cpu() { # pid: its ticks
    awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || true
}
peak_rss() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }

ticks0=$(cpu_ticks)
for mode in pasv port; do
    for n in $POINTS; do
        for round in $(seq "$ROUNDS"); do
            for m in helper relay ftp-proxy; do
                echo "== $mode $n sessions, round $round/$ROUNDS: $m" >&2
                "on_$m"
                pid=$(pid_of "$m")
                c0=$(busy_cpu) p0=${pid:+$(proc_cpu "$pid")}
                # A point that fails is shown as failed, and the run goes on.
                out=$(ip netns exec "$C" timeout $((SECS + 90)) "$dir/busy" 198.19.2.2 21 \
                    "$n" "$SECS" "$mode" 198.18.1.2 2>"$dir/busy.err") ||
                    out="{\"failed\": \"$(tail -1 "$dir/busy.err" | tr -dc '[:alnum:] :,._()-')\"}"
                c1=$(busy_cpu) p1=${pid:+$(proc_cpu "$pid")}
                r=${pid:+$(peak_rss "$pid")}
                contender_running "$m"
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$n" "$m" "$round" \
                    "$((c1 - c0))" "${pid:+$((p1 - p0))}" "${r:-}" >> "$tsv"
                printf '%s\n' "$out" >> "$tsv.json"
                "off_$m"
            done
        done
    done
done

mkdir -p bench/results
base=bench/results/$(date -u +%Y-%m-%d)-$(hostname)-curve
/usr/bin/python3 bench/curve_report.py "$tsv" "$tsv.json" "$(getconf CLK_TCK)" "$base.png" \
    "$(date -u +%Y-%m-%d)" "$(hostname)" "$(nproc)" "$ROUNDS" "$SECS" \
    "$(steal_share "$ticks0")" > "$base.md"
cat "$base.md"
echo
echo "saved: $base.md $base.png"

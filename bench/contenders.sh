# shellcheck shell=bash disable=SC2154,SC2034 # sourced: dir, R, S, … are the caller's
# The contenders of bench/run.sh and bench/curve.sh, sourced by both. Each
# is switched on for its turn and off after, in the lab's router namespace
# $R (client side $CIF, server side $SIF; server namespace $S). Files go
# to $dir; $BIN is the ftp-proxy binary.
#   direct     plain routing, the server routes back (no NAT)
#   helper     NAT (masquerade) + the kernel's FTP helper (ct helper "ftp")
#   relay      bench/relay.c behind an nft redirect of tcp/21: the floor
#              for any user-space control proxy
#   ftp-proxy  behind the same redirect, started for its turn only
# ftp-proxy runs only in its own turn: its conntrack subscription makes
# the kernel build an event for every connection's changes, a cost the
# other contenders must not pay (measured: 20-40 µs of the proxy's CPU per
# helper listing when it ran throughout).

# The lab of a benchmark: namespaces $C, $R and $S (router interfaces
# $CIF towards the client, $SIF towards the server) of lab.sh's lab
# named PREFIX and this shell's pid, and a fresh $dir; removed on exit
# with everything started from $dir (and $dir itself).
bench_lab_up() { # prefix
    name=$1$$
    dir=$(mktemp -d "/tmp/$name.XXXXXX")
    lab=lab/lab.sh
    C=fp-$name-c R=fp-$name-r S=fp-$name-s
    CIF=fp$name-rc SIF=fp$name-rs
    trap bench_lab_down EXIT
    $lab up "$name" >/dev/null
    # Thousands of data connections a second, each leaving a TIME_WAIT
    # socket for 60 s, mostly on the server (it closes first): they would
    # use up the server's ephemeral ports for passive listeners within a
    # round, and every later contender would pay for the search
    # (measured: 2,000 → 250 listings per second). Fewer TIME_WAIT buckets
    # and a wider port range keep each round as fast as the first.
    for x in "$C" "$R" "$S"; do
        ip netns exec "$x" sysctl -qw net.ipv4.tcp_max_tw_buckets=2048 \
            net.ipv4.ip_local_port_range="1024 65535"
    done
}
bench_lab_down() {
    [ -n "${pid_ftp_proxy:-}" ] && kill "$pid_ftp_proxy" 2>/dev/null
    [ -n "${pid_dump:-}" ] && kill "$pid_dump" 2>/dev/null
    pkill -f "$dir/" 2>/dev/null || true
    $lab down "$name" >/dev/null 2>&1 || true
    rm -rf "$dir"
}

# Waits up to 10 s for something to listen on a TCP port (up) or for
# nothing to (free); fails the run after that.
wait_port_state() { # netns port up|free
    local now
    for _ in $(seq 100); do
        now=free
        ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && now=up
        [ "$now" = "$3" ] && return 0
        sleep 0.1
    done
    case $3 in
    up) echo "nothing listens on port $2 in $1" >&2 ;;
    free) echo "port $2 in $1 is still in use" >&2 ;;
    esac
    exit 1
}
wait_port() { wait_port_state "$1" "$2" up; }
wait_no_port() { wait_port_state "$1" "$2" free; }

# Ticks of CPU time the hypervisor gave to others while this machine
# wanted it (steal, /proc/stat), and all ticks: a share of it above a few
# per cent makes rates swing from round to round.
cpu_ticks() { awk '/^cpu / {print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
steal_share() { # "steal total" at the start, "steal total" now: per cent
    local s0 t0 s1 t1
    read -r s0 t0 <<<"$1"
    read -r s1 t1 <<<"$(cpu_ticks)"
    awk -v s="$((s1 - s0))" -v t="$((t1 - t0))" 'BEGIN { printf "%.0f", (t > 0 ? 100 * s / t : 0) }'
}

on_direct() { ip -n "$S" route add 198.18.1.0/24 via 198.19.2.1; }
off_direct() { ip -n "$S" route del 198.18.1.0/24 via 198.19.2.1; }

# Masquerade towards the server, the FTP helper assigned explicitly (it
# rewrites PORT and opens the expected connections).
on_helper() {
    ip netns exec "$R" nft -f - <<EOF
table inet fpbench {
	ct helper ftp-std { type "ftp" protocol tcp; }
	chain pre { type filter hook prerouting priority filter; iifname "$CIF" tcp dport 21 ct helper set "ftp-std"; }
	chain prenat { type nat hook prerouting priority dstnat; }
	chain post { type nat hook postrouting priority srcnat; oifname "$SIF" masquerade; }
}
EOF
}
# The helper's expectations outlive its turn: until the control
# connection's conntrack entry goes (TIME_WAIT, 2 minutes) each one still
# sends the server's next connection to that port on to the old client,
# with the helper's NAT, whatever the router's rules say then. After a
# turn of 499 busy PORT sessions, 193 were left, and the next contender's
# connections to the router's address met them: vsftpd's 425s in
# ftp-proxy's turns of the cost curve (55 and 18 in the two runs after
# such a turn, none in six runs without one). Each turn ends with them.
off_helper() {
    ip netns exec "$R" nft delete table inet fpbench
    ip netns exec "$R" conntrack -F expect 2>/dev/null || true
}

# tcp/21 from the client side to a local port (ftp-proxy(8)'s rdr-to).
redirect() {
    ip netns exec "$R" nft -f - <<EOF
table ip fpbench_rdr {
	chain pre { type nat hook prerouting priority dstnat; iifname "$CIF" tcp dport 21 redirect to :$1; }
}
EOF
}
unredirect() { ip netns exec "$R" nft delete table ip fpbench_rdr; }

start_relay() {
    [ -x "$dir/relay" ] || gcc -O2 -o "$dir/relay" bench/relay.c
    ip netns exec "$R" "$dir/relay" 198.18.1.1 2100 &
    pid_relay=$!
    wait_port "$R" 2100
}
# With relay_data=direct (the cost curve) the relay's data connections
# are routed straight between client and server; bench/run.sh gives it
# no data rows.
on_relay() {
    still_running relay "$pid_relay"
    [ "${relay_data:-}" != direct ] || on_direct
    redirect 2100
}
off_relay() {
    unredirect
    [ "${relay_data:-}" != direct ] || off_direct
    still_running relay "$pid_relay"
}

# Without -i: the redirect is the admin's; -m/-M 500 so that no session
# row meets a limit.
on_ftp-proxy() {
    ip netns exec "$R" "$BIN" -d -D 4 -b 198.18.1.1 -m 500 -M 500 2>>"$dir/ftp-proxy.log" &
    pid_ftp_proxy=$!
    wait_port "$R" 8021
    ftp_proxy_running
    redirect 8021
}
off_ftp-proxy() {
    unredirect
    ftp_proxy_running
    kill "$pid_ftp_proxy"
    wait "$pid_ftp_proxy" 2>/dev/null || true
    pid_ftp_proxy=
    wait_no_port "$R" 8021
}
# A contender's process that ended on its own fails the run, with its
# exit status (above 128: killed by signal status - 128) and the last
# lines of its log, if it has one ($dir goes with the lab otherwise).
still_running() { # name pid [log]
    kill -0 "$2" 2>/dev/null && return 0
    local status=0
    wait "$2" || status=$?
    echo "$1 (pid $2) ended on its own, exit status $status" >&2
    if [ -n "${3:-}" ]; then
        echo "its last lines:" >&2
        tail -n 40 "$3" >&2
    fi
    exit 1
}
ftp_proxy_running() { still_running ftp-proxy "$pid_ftp_proxy" "$dir/ftp-proxy.log"; }

# The process of a contender that has one (mod_proxy: bench/run.sh's).
pid_of() {
    case $1 in
    mod_proxy) echo "${pid_mod_proxy:-}" ;; relay) echo "$pid_relay" ;;
    ftp-proxy) echo "$pid_ftp_proxy" ;; *) echo "" ;;
    esac
}
# still_running for the contender's process, if it has one.
contender_running() {
    case $1 in
    relay) still_running relay "$pid_relay" ;;
    ftp-proxy) ftp_proxy_running ;;
    esac
}

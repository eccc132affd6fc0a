#!/usr/bin/env bash
# Namespace lab for ftp-proxy: client ── router (ftp-proxy) ── server.
#
#   client 198.18.1.2 / 2001:db8:1::2  ──  198.18.1.1 / 2001:db8:1::1  router
#   router 198.19.2.1 / 2001:db8:2::1  ──  198.19.2.2 / 2001:db8:2::2  server
#
# The server has no route back to the client's network, as behind NAT: a
# client can only reach it through the proxy. Only 198.18.0.0/15 and
# 2001:db8::/32 are used.
#
# `lan` adds a third network behind the router, another zone:
#   router 198.18.3.1  ──  198.18.3.2  lan host
#
# `upstream` puts a NAT box in front of the router, as an ISP's box in
# front of a router with a private WAN address (double NAT). The client
# namespace becomes that box, publishing 198.18.4.1; the internet client
# is a fifth namespace:
#   internet client 198.18.4.2  ──  198.18.4.1 box (client ns)  ──  router
# The box forwards tcp/21 and the ports LOW-HIGH to the router's
# 198.18.1.1, masquerades what leaves towards the internet, and refuses
# (with a reset) anything else from the internet: the router's own
# address cannot be reached from there.
#
# Usage (root): lab.sh up NAME | down NAME | lan NAME |
#               upstream NAME LOW-HIGH | ftps NAME DIR [PASV_ADDR] |
#               server NAME vsftpd|proftpd|pyftpd|pyftpd-old|pyftpd-tls DIR [6]
set -euo pipefail

ns() { echo "fp-$1-$2"; }

up() {
    local n=$1 c r s
    c=$(ns "$n" c) r=$(ns "$n" r) s=$(ns "$n" s)
    for x in "$c" "$r" "$s"; do ip netns add "$x"; ip -n "$x" link set lo up; done
    ip link add "fp$n-c" netns "$c" type veth peer name "fp$n-rc" netns "$r"
    ip link add "fp$n-s" netns "$s" type veth peer name "fp$n-rs" netns "$r"
    ip -n "$c" addr add 198.18.1.2/24 dev "fp$n-c"
    ip -n "$c" addr add 2001:db8:1::2/64 dev "fp$n-c" nodad
    ip -n "$r" addr add 198.18.1.1/24 dev "fp$n-rc"
    ip -n "$r" addr add 2001:db8:1::1/64 dev "fp$n-rc" nodad
    ip -n "$r" addr add 198.19.2.1/24 dev "fp$n-rs"
    ip -n "$r" addr add 2001:db8:2::1/64 dev "fp$n-rs" nodad
    ip -n "$s" addr add 198.19.2.2/24 dev "fp$n-s"
    ip -n "$s" addr add 2001:db8:2::2/64 dev "fp$n-s" nodad
    for l in "$c fp$n-c" "$r fp$n-rc" "$r fp$n-rs" "$s fp$n-s"; do
        set -- $l; ip -n "$1" link set "$2" up
    done
    ip -n "$c" route add default via 198.18.1.1
    ip -n "$c" -6 route add default via 2001:db8:1::1
    ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

# A host namespace HOST with one veth (its end DEV) to namespace GW (end
# GWDEV) on NET.0/24: the host is NET.2, its gateway and default route NET.1.
leaf() {
    local host=$1 dev=$2 gw=$3 gwdev=$4 net=$5
    ip netns add "$host"; ip -n "$host" link set lo up
    ip link add "$dev" netns "$host" type veth peer name "$gwdev" netns "$gw"
    ip -n "$host" addr add "$net.2/24" dev "$dev"
    ip -n "$gw" addr add "$net.1/24" dev "$gwdev"
    ip -n "$host" link set "$dev" up
    ip -n "$gw" link set "$gwdev" up
    ip -n "$host" route add default via "$net.1"
}

lan() {
    local n=$1
    leaf "$(ns "$n" l)" "fp$n-l" "$(ns "$n" r)" "fp$n-rl" 198.18.3
}

upstream() {
    local n=$1 range=$2 c r
    c=$(ns "$n" c) r=$(ns "$n" r)
    leaf "$(ns "$n" i)" "fp$n-i" "$c" "fp$n-ci" 198.18.4
    ip -n "$r" route add 198.18.4.0/24 via 198.18.1.2
    ip netns exec "$c" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$c" nft -f - <<NFT
table ip upstream {
    chain pre {
        type nat hook prerouting priority dstnat;
        iifname "fp$n-ci" tcp dport { 21, $range } dnat to 198.18.1.1
    }
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "fp$n-ci" masquerade
    }
    chain filter_in {
        type filter hook forward priority filter;
        ct state established,related accept
        iifname "fp$n-ci" ct status dnat accept
        iifname "fp$n-ci" meta l4proto tcp reject with tcp reset
        iifname "fp$n-ci" drop
    }
}
NFT
}

down() {
    local n=$1 x
    for x in c r s l i; do
        ip netns pids "$(ns "$n" $x)" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$(ns "$n" $x)" 2>/dev/null || true
    done
}

# Writes the config for a server rooted at DIR (DIR/pub is writable by
# user ftp) and starts it in the server namespace.
server() {
    local n=$1 kind=$2 dir=$3 v6=${4:-} s
    s=$(ns "$n" s)
    mkdir -p "$dir/root/pub" "$dir/empty"
    chmod 755 "$dir" "$dir/root"
    chown ftp "$dir/root/pub"
    case $kind in
    vsftpd)
        local bin=/usr/sbin/vsftpd
        [ -x "$bin" ] || bin=/opt/vsftpd/usr/sbin/vsftpd
        local listen="listen=YES
listen_address=198.19.2.2"
        [ -n "$v6" ] && listen="listen=NO
listen_ipv6=YES
listen_address6=2001:db8:2::2"
        cat > "$dir/vsftpd.conf" <<CONF
$listen
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_umask=022
anon_root=$dir/root
no_anon_password=YES
secure_chroot_dir=$dir/empty
seccomp_sandbox=NO
connect_from_port_20=NO
pasv_min_port=30000
pasv_max_port=30999
xferlog_enable=NO
max_per_ip=0
max_clients=0
CONF
        ip netns exec "$s" "$bin" "$dir/vsftpd.conf" >"$dir/server.log" 2>&1 &
        ;;
    proftpd)
        local addr=198.19.2.2
        [ -n "$v6" ] && addr=2001:db8:2::2
        cat > "$dir/proftpd.conf" <<CONF
ServerType standalone
DefaultServer on
Port 21
DefaultAddress $addr
UseIPv6 on
User nobody
Group nogroup
PidFile $dir/proftpd.pid
ScoreboardFile $dir/proftpd.scoreboard
DelayTable none
WtmpLog off
UseReverseDNS off
RequireValidShell off
PassivePorts 31000 31999
TransferLog none
SystemLog $dir/proftpd.log
<Anonymous $dir/root>
  User ftp
  Group nogroup
  UserAlias anonymous ftp
  <Directory pub>
    <Limit STOR>
      AllowAll
    </Limit>
  </Directory>
</Anonymous>
CONF
        ip netns exec "$s" proftpd -n -q -c "$dir/proftpd.conf" >"$dir/server.log" 2>&1 &
        ;;
    pyftpd|pyftpd-old|pyftpd-tls)
        # pyftpdlib (Debian's python3-pyftpdlib): as it is, EPSV/EPRT
        # removed, or explicit FTPS offered with a self-signed certificate.
        local flag=--old addr=198.19.2.2
        [ "$kind" = pyftpd ] && flag=""
        [ -n "$v6" ] && addr=2001:db8:2::2
        if [ "$kind" = pyftpd-tls ]; then
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ftp.lab \
                -keyout "$dir/tls.pem" -out "$dir/tls.crt" >/dev/null 2>&1
            cat "$dir/tls.crt" >> "$dir/tls.pem"
            flag="--tls $dir/tls.pem"
        fi
        # shellcheck disable=SC2086
        ip netns exec "$s" /usr/bin/python3 "$(dirname "$0")/../tests/servers/pyftpd.py" \
            $flag "$addr" "$dir/root" >"$dir/server.log" 2>&1 &
        ;;
    *) echo "unknown server $kind" >&2; exit 2 ;;
    esac
    local port_ok=
    for _ in $(seq 50); do
        if ip netns exec "$s" ss -Hltn 'sport = :21' | grep -q .; then port_ok=1; break; fi
        sleep 0.1
    done
    [ -n "$port_ok" ] || { echo "$kind did not start:" >&2; cat "$dir/server.log" >&2; exit 1; }
}

# A second vsftpd on the server, for the FTPS recipes: implicit TLS on
# port 990 (self-signed certificate), passive ports 31000-31009, naming
# PASV_ADDR in its 227 replies when given (as a server published behind a
# port forward must).
ftps() {
    local n=$1 dir=$2 pasv_addr=${3:-} s bin=/usr/sbin/vsftpd
    s=$(ns "$n" s)
    [ -x "$bin" ] || bin=/opt/vsftpd/usr/sbin/vsftpd
    mkdir -p "$dir/ftps-empty"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ftps.lab \
        -keyout "$dir/ftps.key" -out "$dir/ftps.crt" >/dev/null 2>&1
    cat > "$dir/ftps.conf" <<CONF
listen=YES
listen_address=198.19.2.2
listen_port=990
background=NO
anonymous_enable=YES
local_enable=NO
anon_root=$dir/root
no_anon_password=YES
secure_chroot_dir=$dir/ftps-empty
seccomp_sandbox=NO
ssl_enable=YES
implicit_ssl=YES
allow_anon_ssl=YES
force_anon_logins_ssl=YES
force_anon_data_ssl=YES
require_ssl_reuse=NO
rsa_cert_file=$dir/ftps.crt
rsa_private_key_file=$dir/ftps.key
pasv_min_port=31000
pasv_max_port=31009
${pasv_addr:+pasv_address=$pasv_addr}
xferlog_enable=NO
CONF
    ip netns exec "$s" "$bin" "$dir/ftps.conf" >"$dir/ftps.log" 2>&1 &
    for _ in $(seq 50); do
        ip netns exec "$s" ss -Hltn 'sport = :990' | grep -q . && return 0
        sleep 0.1
    done
    echo "vsftpd (FTPS) did not start:" >&2; cat "$dir/ftps.log" >&2; exit 1
}

cmd=${1:-}; shift || true
case $cmd in
up|down|lan|upstream|server|ftps) "$cmd" "$@" ;;
*) sed -n '2,25p' "$0"; exit 2 ;;
esac

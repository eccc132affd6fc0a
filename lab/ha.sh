#!/usr/bin/env bash
# An HA pair of routers for ftp-proxy: keepalived (VRRP) moves the VIPs,
# conntrackd (FTFW) copies the connection tracking, each router runs its
# own ftp-proxy.
#
#   client 198.18.1.2 ── LAN switch ── a 198.18.1.11, b 198.18.1.12, VIP 198.18.1.1
#   server 198.19.2.2 ── WAN switch ── a 198.19.2.11, b 198.19.2.12, VIP 198.19.2.1
#                 a 198.18.9.1 ── sync link ── b 198.18.9.2 (conntrackd)
#
# Namespaces fp-NAME-{c,a,b,s,w} (w holds the two switches); the server
# namespace is lab.sh's, so `lab.sh server NAME KIND DIR` serves in it.
# Only 198.18.0.0/15 is used.
#
# Usage (root): ha.sh up NAME | down NAME | start NAME DIR | fail NAME
set -euo pipefail

ns() { echo "fp-$1-$2"; }

up() {
    local n=$1 w x
    w=$(ns "$n" w)
    for x in c a b s w; do ip netns add "$(ns "$n" $x)"; ip -n "$(ns "$n" $x)" link set lo up; done
    ip -n "$w" link add lan type bridge
    ip -n "$w" link add wan type bridge
    ip -n "$w" link set lan up
    ip -n "$w" link set wan up
    # host namespace, its device, switch, its address
    for l in "c lan lan 198.18.1.2" "a lan lan 198.18.1.11" "b lan lan 198.18.1.12" \
        "s wan wan 198.19.2.2" "a wan wan 198.19.2.11" "b wan wan 198.19.2.12"; do
        # shellcheck disable=SC2086 # words of a fixed list
        set -- $l
        local host dev
        host=$(ns "$n" "$1") dev="fp$n$1$2"
        ip link add "$dev" netns "$host" type veth peer name "$1$2" netns "$w"
        ip -n "$w" link set "$1$2" master "$3" up
        ip -n "$host" addr add "$4/24" dev "$dev"
        ip -n "$host" link set "$dev" up
    done
    ip link add "fp${n}async" netns "$(ns "$n" a)" type veth peer name "fp${n}bsync" netns "$(ns "$n" b)"
    ip -n "$(ns "$n" a)" addr add 198.18.9.1/24 dev "fp${n}async"
    ip -n "$(ns "$n" b)" addr add 198.18.9.2/24 dev "fp${n}bsync"
    ip -n "$(ns "$n" a)" link set "fp${n}async" up
    ip -n "$(ns "$n" b)" link set "fp${n}bsync" up
    ip -n "$(ns "$n" c)" route add default via 198.18.1.1
    # Each router is a stateful firewall, as the conntrack-tools manual
    # has it: a TCP segment of a connection it has no state for is
    # invalid (no loose pickup) and dropped, not answered. Otherwise the
    # new master, holding the VIPs a moment before conntrackd has
    # committed the peer's connections, answers the server's
    # retransmission to the WAN VIP with a reset and the transfer dies;
    # dropped, the next retransmission finds the committed state.
    for x in a b; do
        ip netns exec "$(ns "$n" $x)" nft -f - <<'NFT'
table inet ha_filter {
    chain input { type filter hook input priority filter; ct state invalid drop; }
    chain forward { type filter hook forward priority filter; ct state invalid drop; }
}
NFT
        ip netns exec "$(ns "$n" $x)" sysctl -qw net.ipv4.ip_forward=1 \
            net.netfilter.nf_conntrack_tcp_loose=0
    done
}

down() {
    local n=$1 x
    for x in c a b s w; do
        ip netns pids "$(ns "$n" $x)" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$(ns "$n" $x)" 2>/dev/null || true
    done
}

# keepalived and conntrackd on both routers, configs and logs in DIR. A
# is master (priority 150); becoming master commits the connections
# conntrackd received from the peer to the kernel.
start() {
    local n=$1 dir=$2 r me peer prio
    for r in a b; do
        case $r in
        a) me=198.18.9.1 peer=198.18.9.2 prio=150 ;;
        b) me=198.18.9.2 peer=198.18.9.1 prio=100 ;;
        esac
        cat >"$dir/conntrackd-$r.conf" <<CONF
Sync {
    Mode FTFW {
        DisableExternalCache Off
    }
    UDP {
        IPv4_address $me
        IPv4_Destination_Address $peer
        Port 3780
        Interface fp$n${r}sync
        Checksum on
    }
}
General {
    HashSize 8192
    HashLimit 65536
    LogFile $dir/conntrackd-$r.log
    Syslog off
    LockFile $dir/conntrackd-$r.lock
    UNIX {
        Path $dir/conntrackd-$r.sock
    }
    NetlinkBufferSize 2097152
    NetlinkBufferSizeMaxGrowth 8388608
    Filter From Userspace {
        Protocol Accept {
            TCP
        }
        Address Ignore {
            IPv4_address 127.0.0.1
            IPv4_address 198.18.9.0/24
        }
    }
}
CONF
        cat >"$dir/master-$r.sh" <<SH
#!/bin/sh
conntrackd -C $dir/conntrackd-$r.conf -c
conntrackd -C $dir/conntrackd-$r.conf -f
conntrackd -C $dir/conntrackd-$r.conf -R
conntrackd -C $dir/conntrackd-$r.conf -B
echo master >$dir/state-$r
SH
        cat >"$dir/backup-$r.sh" <<SH
#!/bin/sh
conntrackd -C $dir/conntrackd-$r.conf -n
echo backup >$dir/state-$r
SH
        chmod 755 "$dir/master-$r.sh" "$dir/backup-$r.sh"
        cat >"$dir/keepalived-$r.conf" <<CONF
global_defs {
    router_id fp-$r
    script_user root
    enable_script_security
}
vrrp_sync_group G {
    group {
        LAN
    }
    notify_master "$dir/master-$r.sh"
    notify_backup "$dir/backup-$r.sh"
}
vrrp_instance LAN {
    state BACKUP
    interface fp$n${r}lan
    virtual_router_id 51
    priority $prio
    advert_int 1
    virtual_ipaddress {
        198.18.1.1/24 dev fp$n${r}lan
        198.19.2.1/24 dev fp$n${r}wan
    }
}
CONF
        ip netns exec "$(ns "$n" $r)" conntrackd -C "$dir/conntrackd-$r.conf" -d
        ip netns exec "$(ns "$n" $r)" keepalived -n -l -D -f "$dir/keepalived-$r.conf" \
            -p "$dir/keepalived-$r.pid" -r "$dir/vrrp-$r.pid" >"$dir/keepalived-$r.log" 2>&1 &
    done
}

# Router A fails: its links go down (keepalived there sees a fault), as
# when it loses power.
fail() {
    local n=$1
    ip -n "$(ns "$n" w)" link set alan down
    ip -n "$(ns "$n" w)" link set awan down
    ip -n "$(ns "$n" a)" link set "fp${n}async" down
}

case "${1:-}" in
up) up "$2" ;;
down) down "$2" ;;
start) start "$2" "$3" ;;
fail) fail "$2" ;;
*) echo "usage: $0 up|down|start|fail NAME [DIR]" >&2; exit 2 ;;
esac

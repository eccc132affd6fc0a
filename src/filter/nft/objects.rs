//! nf_tables objects: table, chains, maps, rules and map elements, each
//! encoded as one message of a batch.

use super::expr::{self, *};
use super::msg::{MsgBuf, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL};
use std::net::IpAddr;

pub const NFPROTO_INET: u8 = 1;
pub const NFT_TABLE_F_OWNER: u32 = 0x2;

const MSG_NEWTABLE: u16 = 0;
const MSG_GETTABLE: u16 = 1;
const MSG_DELTABLE: u16 = 2;
const MSG_NEWCHAIN: u16 = 3;
const MSG_NEWRULE: u16 = 6;
const MSG_DELRULE: u16 = 8;
const MSG_NEWSET: u16 = 9;
pub const MSG_NEWSETELEM: u16 = 12;
pub const MSG_DELSETELEM: u16 = 14;
/// Deletes without ENOENT for a missing element (Linux 6.3+).
pub const MSG_DESTROYSETELEM: u16 = 30;

const NFT_SET_MAP: u32 = 0x8;
const NFT_SET_TIMEOUT: u32 = 0x10;

// nft's datatype ids, stored in the set so `nft list` prints the elements
// as addresses and ports; concatenations shift 6 bits per field.
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;
const TYPE_INET_SERVICE: u32 = 13;
const TYPE_BITS: u32 = 6;

pub const HOOK_PREROUTING: u32 = 0;
pub const HOOK_FORWARD: u32 = 2;
pub const HOOK_POSTROUTING: u32 = 4;
pub const PRIO_DSTNAT: i32 = -100;
pub const PRIO_FILTER: i32 = 0;
pub const PRIO_SRCNAT: i32 = 100;

/// Address family of one set of maps and rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(a: &IpAddr) -> Family {
        if a.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
    fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }
    fn addr_type(self) -> u32 {
        match self {
            Family::V4 => TYPE_IPADDR,
            Family::V6 => TYPE_IP6ADDR,
        }
    }
    pub fn nfproto(self) -> u8 {
        match self {
            Family::V4 => NFPROTO_IPV4,
            Family::V6 => NFPROTO_IPV6,
        }
    }
    /// Registers for saddr, daddr, dport, as nft allocates them.
    fn key_regs(self) -> (u32, u32, u32) {
        match self {
            Family::V4 => (REG_1, REG32_01, REG32_02),
            Family::V6 => (REG_1, REG_2, REG_3),
        }
    }
    /// Registers where a looked-up value's address and port land: past
    /// the key, which the one-shot delete still needs.
    fn value_regs(self) -> (u32, u32) {
        match self {
            Family::V4 => (REG_2, REG32_05),
            Family::V6 => (REG32_09, REG32_13),
        }
    }
    /// Conntrack keys of the original direction's addresses.
    fn ct_addr_keys(self) -> (u32, u32) {
        match self {
            Family::V4 => (CT_SRC_IP, CT_DST_IP),
            Family::V6 => (CT_SRC_IP6, CT_DST_IP6),
        }
    }
    /// Offsets of the source and destination address in the IP header.
    fn addr_offsets(self) -> (u32, u32) {
        match self {
            Family::V4 => (12, 16),
            Family::V6 => (8, 24),
        }
    }
}

/// What a map returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    Addr,
    AddrPort,
}

/// Fixed-size key or value bytes: concatenated fields, each padded to 4.
pub struct Packed {
    buf: [u8; 36],
    len: usize,
}

impl Packed {
    fn new() -> Packed {
        Packed {
            buf: [0; 36],
            len: 0,
        }
    }
    fn addr(mut self, a: &IpAddr) -> Packed {
        match a {
            IpAddr::V4(a) => self.field(&a.octets()),
            IpAddr::V6(a) => self.field(&a.octets()),
        }
        self
    }
    fn port(mut self, p: u16) -> Packed {
        self.field(&p.to_be_bytes());
        self
    }
    fn field(&mut self, b: &[u8]) {
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += (b.len() + 3) & !3;
    }
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Bytes of a key in `fam`: two addresses and a port, each padded to 4.
pub fn key_len(fam: Family) -> usize {
    2 * fam.addr_len() + 4
}

/// Key of every map: the first packet's `saddr . daddr . dport`.
pub fn key(src: &IpAddr, dst: &IpAddr, dport: u16) -> Packed {
    Packed::new().addr(src).addr(dst).port(dport)
}

pub fn value(addr: &IpAddr, port: Option<u16>) -> Packed {
    let p = Packed::new().addr(addr);
    match port {
        Some(port) => p.port(port),
        None => p,
    }
}

pub fn table(m: &mut MsgBuf, seq: u32, name: &str, flags: u32) {
    // As nft: the kernel creates a missing table without NLM_F_CREATE.
    m.nft_msg(MSG_NEWTABLE, 0, seq, NFPROTO_INET);
    m.attr_str(1, name); // NFTA_TABLE_NAME
    m.attr_be32(2, flags); // NFTA_TABLE_FLAGS
    m.end_msg();
}

/// A request (outside any batch) answered by the table, or ENOENT.
pub fn get_table(m: &mut MsgBuf, seq: u32, name: &str) {
    m.nft_msg(MSG_GETTABLE, 0, seq, NFPROTO_INET);
    m.attr_str(1, name); // NFTA_TABLE_NAME
    m.end_msg();
}

pub fn del_table(m: &mut MsgBuf, seq: u32, name: &str) {
    m.nft_msg(MSG_DELTABLE, 0, seq, NFPROTO_INET);
    m.attr_str(1, name); // NFTA_TABLE_NAME
    m.end_msg();
}

pub fn base_chain(
    m: &mut MsgBuf,
    seq: u32,
    table: &str,
    name: &str,
    kind: &str,
    hook: u32,
    prio: i32,
) {
    m.nft_msg(MSG_NEWCHAIN, NLM_F_CREATE, seq, NFPROTO_INET);
    m.attr_str(1, table); // NFTA_CHAIN_TABLE
    m.attr_str(3, name); // NFTA_CHAIN_NAME
    m.attr_str(7, kind); // NFTA_CHAIN_TYPE
    m.attr_be32(5, 1); // NFTA_CHAIN_POLICY = NF_ACCEPT
    m.nest_begin(4); // NFTA_CHAIN_HOOK
    m.attr_be32(1, hook); // NFTA_HOOK_HOOKNUM
    m.attr_be32(2, prio as u32); // NFTA_HOOK_PRIORITY
    m.nest_end();
    m.end_msg();
}

/// `map NAME { type A . A . inet_service : A [. inet_service]; flags timeout; }`
pub fn map(m: &mut MsgBuf, seq: u32, table: &str, name: &str, id: u32, fam: Family, v: Value) {
    let a = fam.addr_len() as u32;
    let key_type =
        (((fam.addr_type() << TYPE_BITS) | fam.addr_type()) << TYPE_BITS) | TYPE_INET_SERVICE;
    let (data_type, data_len) = match v {
        Value::Addr => (fam.addr_type(), a),
        Value::AddrPort => ((fam.addr_type() << TYPE_BITS) | TYPE_INET_SERVICE, a + 4),
    };
    m.nft_msg(MSG_NEWSET, NLM_F_CREATE, seq, NFPROTO_INET);
    m.attr_str(1, table); // NFTA_SET_TABLE
    m.attr_str(2, name); // NFTA_SET_NAME
    m.attr_be32(3, NFT_SET_MAP | NFT_SET_TIMEOUT); // NFTA_SET_FLAGS
    m.attr_be32(4, key_type); // NFTA_SET_KEY_TYPE
    m.attr_be32(5, 2 * a + 4); // NFTA_SET_KEY_LEN
    m.attr_be32(6, data_type); // NFTA_SET_DATA_TYPE
    m.attr_be32(7, data_len); // NFTA_SET_DATA_LEN
    m.attr_be32(10, id); // NFTA_SET_ID
                         // No NFTA_SET_DESC: field lengths go only with NFT_SET_CONCAT, which
                         // selects the interval backend; an exact-match hash is what we want.
    m.end_msg();
}

fn rule_begin(m: &mut MsgBuf, seq: u32, table: &str, chain: &str) {
    m.nft_msg(MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, seq, NFPROTO_INET);
    m.attr_str(1, table); // NFTA_RULE_TABLE
    m.attr_str(2, chain); // NFTA_RULE_CHAIN
    m.nest_begin(4); // NFTA_RULE_EXPRESSIONS
}

fn rule_end(m: &mut MsgBuf) {
    m.nest_end();
    m.end_msg();
}

/// `meta nfproto F meta l4proto tcp`
fn match_tcp(m: &mut MsgBuf, fam: Family) {
    meta_load(m, META_NFPROTO, REG_1);
    cmp_eq(m, REG_1, &[fam.nfproto()]);
    meta_load(m, META_L4PROTO, REG_1);
    cmp_eq(m, REG_1, &[IPPROTO_TCP]);
}

/// Where a map's key comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFrom {
    /// The packet: `saddr . daddr . tcp dport` (before DNAT).
    Packet,
    /// The connection's original direction, `ct original saddr . daddr .
    /// proto-dst`: after DNAT still the tuple the mapping was made for,
    /// so DNAT and SNAT share one key.
    Conntrack,
}

/// Loads the key of a data connection's first packet into the key
/// registers.
pub fn load_key(m: &mut MsgBuf, fam: Family, from: KeyFrom) {
    let (rs, rd, rp) = fam.key_regs();
    match_tcp(m, fam);
    match from {
        KeyFrom::Packet => {
            let (os, od) = fam.addr_offsets();
            let a = fam.addr_len() as u32;
            payload(m, BASE_NETWORK, os, a, rs);
            payload(m, BASE_NETWORK, od, a, rd);
            payload(m, BASE_TRANSPORT, 2, 2, rp);
        }
        KeyFrom::Conntrack => {
            let (ks, kd) = fam.ct_addr_keys();
            ct_load_original(m, ks, rs);
            ct_load_original(m, kd, rd);
            ct_load_original(m, CT_PROTO_DST, rp);
        }
    }
}

/// An interface name as the kernel compares it: NUL-padded to IFNAMSIZ.
/// Longer names are refused by the options.
fn ifname(iface: &str) -> [u8; 16] {
    let mut name = [0u8; 16];
    let n = iface.len().min(15);
    name[..n].copy_from_slice(&iface.as_bytes()[..n]);
    name
}

/// What the interception rule takes.
#[derive(Clone, Copy, Debug)]
pub struct Intercept<'a> {
    pub iface: &'a str,
    /// Leave traffic to the router's own addresses alone (transparent
    /// mode: the proxy must never be a way into the router).
    pub not_local: bool,
    /// Only traffic that would be routed out of this interface.
    pub out: Option<&'a str>,
    /// The listen address (`-b`), when it is one: the redirect goes
    /// there rather than to the interface's first address, so a VIP
    /// (an HA pair's) or any other address of the router can be it.
    pub to: Option<std::net::IpAddr>,
}

/// `iifname IFACE [fib daddr type != local] [fib daddr oifname OUT]
/// meta nfproto F tcp dport 21 (redirect to :PORT | dnat to ADDR:PORT)`
pub fn intercept_rule(
    m: &mut MsgBuf,
    seq: u32,
    table: &str,
    chain: &str,
    i: &Intercept,
    fam: Family,
    port: u16,
) {
    rule_begin(m, seq, table, chain);
    meta_load(m, META_IIFNAME, REG_1);
    cmp_eq(m, REG_1, &ifname(i.iface));
    if i.not_local {
        fib_daddr(m, FIB_RESULT_ADDRTYPE, REG_1);
        cmp_neq(m, REG_1, &RTN_LOCAL.to_ne_bytes());
    }
    if let Some(out) = i.out {
        fib_daddr(m, FIB_RESULT_OIFNAME, REG_1);
        cmp_eq(m, REG_1, &ifname(out));
    }
    match_tcp(m, fam);
    payload(m, BASE_TRANSPORT, 2, 2, REG_1);
    cmp_eq(m, REG_1, &21u16.to_be_bytes());
    match i.to {
        Some(addr) => {
            match addr {
                std::net::IpAddr::V4(a) => immediate(m, REG_1, &a.octets()),
                std::net::IpAddr::V6(a) => immediate(m, REG_1, &a.octets()),
            }
            immediate(m, REG_2, &port.to_be_bytes());
            let flags = Some(NF_NAT_RANGE_PROTO_SPECIFIED);
            nat(m, NAT_DNAT, fam.nfproto(), REG_1, Some(REG_2), flags);
        }
        None => {
            immediate(m, REG_1, &port.to_be_bytes());
            redir(m, REG_1);
        }
    }
    rule_end(m);
}

/// Extra statements on the first packet of a data connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    pub ct_mark: Option<u32>,
    pub log: bool,
}

/// One NAT rule over a map of data connections.
#[derive(Clone, Copy, Debug)]
pub struct NatRule<'a> {
    pub chain: &'a str,
    pub fam: Family,
    pub set: &'a str,
    pub set_id: u32,
    /// `NAT_DNAT` or `NAT_SNAT`.
    pub kind: u32,
    pub value: Value,
    pub key: KeyFrom,
    /// Delete the element as its first packet uses it: one connection
    /// per mapping.
    pub one_shot: bool,
    pub marks: Marks,
}

/// The key looked up in the map, then (optionally) the element deleted,
/// ct mark and log, then dnat/snat to the value. The lookup comes first,
/// so the statements apply only to the proxy's own data connections; a
/// nat chain sees only a connection's first packet, so the delete uses
/// the mapping up exactly once.
pub fn nat_rule(m: &mut MsgBuf, seq: u32, table: &str, r: &NatRule) {
    let (addr, port) = r.fam.value_regs();
    let (_, key_daddr, _) = r.fam.key_regs();
    rule_begin(m, seq, table, r.chain);
    load_key(m, r.fam, r.key);
    lookup(m, r.set, r.set_id, REG_1, addr);
    if r.one_shot {
        // A map's dynset takes data registers too, which a delete does
        // not read: the key's `daddr [. dport]` has the value's shape, so
        // nft(8) can still list the rule.
        dynset_delete(m, r.set, r.set_id, REG_1, key_daddr);
    }
    if let Some(mark) = r.marks.ct_mark {
        immediate(m, REG32_14, &mark.to_ne_bytes());
        ct_set(m, CT_MARK, REG32_14);
    }
    if r.marks.log {
        expr::log(m, "ftp-proxy data: ");
    }
    let proto = (r.value == Value::AddrPort).then_some(port);
    nat(m, r.kind, r.fam.nfproto(), addr, proto, None);
    rule_end(m);
}

/// `ct mark TAG [meta priority set Q] [log prefix …]` in the forward chain:
/// per-packet treatment of the data connections marked at NAT time.
pub fn forward_rule(
    m: &mut MsgBuf,
    seq: u32,
    table: &str,
    chain: &str,
    tag: u32,
    priority: Option<u32>,
    log_all: bool,
) {
    rule_begin(m, seq, table, chain);
    ct_load(m, CT_MARK, REG_1);
    cmp_eq(m, REG_1, &tag.to_ne_bytes());
    if let Some(p) = priority {
        immediate(m, REG_1, &p.to_ne_bytes());
        meta_set(m, META_PRIORITY, REG_1);
    }
    if log_all {
        expr::log(m, "ftp-proxy data: ");
    }
    rule_end(m);
}

/// Deletes every rule of a chain (`nft flush chain`).
pub fn flush_chain(m: &mut MsgBuf, seq: u32, table: &str, chain: &str) {
    m.nft_msg(MSG_DELRULE, 0, seq, NFPROTO_INET);
    m.attr_str(1, table); // NFTA_RULE_TABLE
    m.attr_str(2, chain); // NFTA_RULE_CHAIN
    m.end_msg();
}

/// `ct mark != 0`, with no verdict: matches or not, the packet goes on.
/// Its one job is to be a conntrack user: conntrack hooks stay registered
/// only while some rule needs them, and without conntrack no connection
/// is translated (see `instance::KEEPER`).
pub fn keeper_rule(m: &mut MsgBuf, seq: u32, table: &str, chain: &str) {
    rule_begin(m, seq, table, chain);
    ct_load(m, CT_MARK, REG_1);
    cmp_neq(m, REG_1, &0u32.to_ne_bytes());
    rule_end(m);
}

/// How an element goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Del {
    /// ENOENT if it is not there (used up, expired).
    Delete,
    /// Quietly, present or not (Linux 6.3+).
    Destroy,
}

/// Adds one element, exclusively (EEXIST if the key is taken), with an
/// optional timeout.
pub fn add_element(
    m: &mut MsgBuf,
    seq: u32,
    table: &str,
    set: &str,
    key: &[u8],
    data: &[u8],
    timeout_ms: Option<u64>,
) {
    let flags = NLM_F_CREATE | NLM_F_EXCL;
    element(
        m,
        MSG_NEWSETELEM,
        flags,
        seq,
        (table, set),
        key,
        Some(data),
        timeout_ms,
    );
}

pub fn del_element(m: &mut MsgBuf, seq: u32, table: &str, set: &str, key: &[u8], how: Del) {
    let msg = match how {
        Del::Delete => MSG_DELSETELEM,
        Del::Destroy => MSG_DESTROYSETELEM,
    };
    element(m, msg, 0, seq, (table, set), key, None, None);
}

#[allow(clippy::too_many_arguments)]
fn element(
    m: &mut MsgBuf,
    msg: u16,
    flags: u16,
    seq: u32,
    (table, set): (&str, &str),
    key: &[u8],
    data: Option<&[u8]>,
    timeout_ms: Option<u64>,
) {
    m.nft_msg(msg, flags, seq, NFPROTO_INET);
    m.attr_str(1, table); // NFTA_SET_ELEM_LIST_TABLE
    m.attr_str(2, set); // NFTA_SET_ELEM_LIST_SET
    m.nest_begin(3); // NFTA_SET_ELEM_LIST_ELEMENTS
    m.nest_begin(1); // NFTA_LIST_ELEM
    if let Some(t) = timeout_ms {
        m.attr_be64(4, t); // NFTA_SET_ELEM_TIMEOUT
    }
    m.nest_begin(1); // NFTA_SET_ELEM_KEY
    m.attr(NFTA_DATA_VALUE, key);
    m.nest_end();
    if let Some(d) = data {
        m.nest_begin(2); // NFTA_SET_ELEM_DATA
        m.attr(NFTA_DATA_VALUE, d);
        m.nest_end();
    }
    m.nest_end();
    m.nest_end();
    m.end_msg();
}

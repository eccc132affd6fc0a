//! nf_tables objects: table, chains, maps, rules and map elements, each
//! encoded as one message of a batch.

use super::expr::{self, *};
use super::msg::{MsgBuf, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL};
use std::net::IpAddr;

pub const NFPROTO_INET: u8 = 1;
pub const NFT_TABLE_F_OWNER: u32 = 0x2;

const MSG_NEWTABLE: u16 = 0;
const MSG_GETTABLE: u16 = 1;
const MSG_DELTABLE: u16 = 2;
const MSG_NEWCHAIN: u16 = 3;
const MSG_NEWRULE: u16 = 6;
const MSG_NEWSET: u16 = 9;
pub const MSG_NEWSETELEM: u16 = 12;
pub const MSG_DELSETELEM: u16 = 14;

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
    /// Register where a looked-up `addr . port` value's port lands.
    fn port_reg(self) -> u32 {
        match self {
            Family::V4 => REG32_01,
            Family::V6 => REG_2,
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
    m.nft_msg(MSG_NEWTABLE, NLM_F_ACK, seq, NFPROTO_INET);
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
    m.nft_msg(MSG_DELTABLE, NLM_F_ACK, seq, NFPROTO_INET);
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
    m.nft_msg(MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_ACK, seq, NFPROTO_INET);
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
    m.nft_msg(MSG_NEWSET, NLM_F_CREATE | NLM_F_ACK, seq, NFPROTO_INET);
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
    m.nft_msg(
        MSG_NEWRULE,
        NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK,
        seq,
        NFPROTO_INET,
    );
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

/// Loads `saddr . daddr . tcp dport` and looks it up in `set`.
fn lookup_key(m: &mut MsgBuf, fam: Family, set: &str, set_id: u32) {
    let (rs, rd, rp) = fam.key_regs();
    let (os, od) = fam.addr_offsets();
    let a = fam.addr_len() as u32;
    match_tcp(m, fam);
    payload(m, BASE_NETWORK, os, a, rs);
    payload(m, BASE_NETWORK, od, a, rd);
    payload(m, BASE_TRANSPORT, 2, 2, rp);
    lookup(m, set, set_id, REG_1, REG_1);
}

/// `iifname IFACE meta nfproto F tcp dport 21 redirect to :PORT`
pub fn intercept_rule(
    m: &mut MsgBuf,
    seq: u32,
    table: &str,
    chain: &str,
    iface: &str,
    fam: Family,
    port: u16,
) {
    let mut name = [0u8; 16];
    let n = iface.len().min(15);
    name[..n].copy_from_slice(&iface.as_bytes()[..n]);
    rule_begin(m, seq, table, chain);
    meta_load(m, META_IIFNAME, REG_1);
    cmp_eq(m, REG_1, &name);
    match_tcp(m, fam);
    payload(m, BASE_TRANSPORT, 2, 2, REG_1);
    cmp_eq(m, REG_1, &21u16.to_be_bytes());
    immediate(m, REG_1, &port.to_be_bytes());
    redir(m, REG_1);
    rule_end(m);
}

/// Extra statements on the first packet of a data connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    pub ct_mark: Option<u32>,
    pub log: bool,
}

/// `saddr . daddr . tcp dport` looked up in `set`, then (optionally) ct mark
/// and log, then dnat/snat to the value. The lookup comes first, so the
/// statements apply only to the proxy's own data connections.
#[allow(clippy::too_many_arguments)]
pub fn nat_rule(
    m: &mut MsgBuf,
    seq: u32,
    table: &str,
    chain: &str,
    fam: Family,
    set: &str,
    set_id: u32,
    kind: u32,
    v: Value,
    marks: Marks,
) {
    rule_begin(m, seq, table, chain);
    lookup_key(m, fam, set, set_id);
    if let Some(mark) = marks.ct_mark {
        immediate(m, REG32_12, &mark.to_ne_bytes());
        ct_set(m, CT_MARK, REG32_12);
    }
    if marks.log {
        expr::log(m, "ftp-proxy data: ");
    }
    let proto = (v == Value::AddrPort).then(|| fam.port_reg());
    nat(m, kind, fam.nfproto(), REG_1, proto);
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

/// One element: add (with timeout, exclusive) or delete.
pub fn element(
    m: &mut MsgBuf,
    seq: u32,
    table: &str,
    set: &str,
    key: &[u8],
    data: Option<&[u8]>,
    timeout_ms: Option<u64>,
) {
    let (msg, flags) = match data {
        Some(_) => (MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK),
        None => (MSG_DELSETELEM, NLM_F_ACK),
    };
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

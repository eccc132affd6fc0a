//! nf_tables expressions (linux/netfilter/nf_tables.h), each one list
//! element of NFTA_RULE_EXPRESSIONS. Attributes are in the order nft(8)
//! sends them, so the golden tests can compare bytes.

use super::msg::MsgBuf;

// Registers: nft loads 4-byte keys into reg 1, 9, 10 (32-bit numbering
// after the first) and 16-byte keys into reg 1, 2, 3; we do the same.
pub const REG_1: u32 = 1;
pub const REG_2: u32 = 2;
pub const REG_3: u32 = 3;
pub const REG32_01: u32 = 9;
pub const REG32_02: u32 = 10;
/// Scratch register for immediates that must not clobber lookup results.
pub const REG32_12: u32 = 20;

pub const META_PRIORITY: u32 = 2;
pub const META_IIFNAME: u32 = 6;
pub const META_NFPROTO: u32 = 15;
pub const META_L4PROTO: u32 = 16;
pub const CT_MARK: u32 = 3;
pub const BASE_NETWORK: u32 = 1;
pub const BASE_TRANSPORT: u32 = 2;
pub const NAT_SNAT: u32 = 0;
pub const NAT_DNAT: u32 = 1;
pub const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;
pub const NFPROTO_IPV4: u8 = 2;
pub const NFPROTO_IPV6: u8 = 10;
pub const IPPROTO_TCP: u8 = 6;

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
pub const NFTA_DATA_VALUE: u16 = 1;

fn expr(m: &mut MsgBuf, name: &str, body: impl FnOnce(&mut MsgBuf)) {
    m.nest_begin(NFTA_LIST_ELEM);
    m.attr_str(NFTA_EXPR_NAME, name);
    m.nest_begin(NFTA_EXPR_DATA);
    body(m);
    m.nest_end();
    m.nest_end();
}

/// `[ meta load KEY => reg DREG ]`
pub fn meta_load(m: &mut MsgBuf, key: u32, dreg: u32) {
    expr(m, "meta", |m| {
        m.attr_be32(2, key); // NFTA_META_KEY
        m.attr_be32(1, dreg); // NFTA_META_DREG
    });
}

/// `[ meta set KEY with reg SREG ]`
pub fn meta_set(m: &mut MsgBuf, key: u32, sreg: u32) {
    expr(m, "meta", |m| {
        m.attr_be32(2, key); // NFTA_META_KEY
        m.attr_be32(3, sreg); // NFTA_META_SREG
    });
}

/// `[ cmp eq reg SREG DATA ]`
pub fn cmp_eq(m: &mut MsgBuf, sreg: u32, data: &[u8]) {
    expr(m, "cmp", |m| {
        m.attr_be32(1, sreg); // NFTA_CMP_SREG
        m.attr_be32(2, 0); // NFTA_CMP_OP = NFT_CMP_EQ
        m.nest_begin(3); // NFTA_CMP_DATA
        m.attr(NFTA_DATA_VALUE, data);
        m.nest_end();
    });
}

/// `[ payload load LEN b @ BASE header + OFFSET => reg DREG ]`
pub fn payload(m: &mut MsgBuf, base: u32, offset: u32, len: u32, dreg: u32) {
    expr(m, "payload", |m| {
        m.attr_be32(1, dreg); // NFTA_PAYLOAD_DREG
        m.attr_be32(2, base); // NFTA_PAYLOAD_BASE
        m.attr_be32(3, offset); // NFTA_PAYLOAD_OFFSET
        m.attr_be32(4, len); // NFTA_PAYLOAD_LEN
    });
}

/// `[ lookup reg SREG set NAME dreg DREG ]`
pub fn lookup(m: &mut MsgBuf, set: &str, set_id: u32, sreg: u32, dreg: u32) {
    expr(m, "lookup", |m| {
        m.attr_be32(2, sreg); // NFTA_LOOKUP_SREG
        m.attr_be32(3, dreg); // NFTA_LOOKUP_DREG
        m.attr_str(1, set); // NFTA_LOOKUP_SET
        m.attr_be32(4, set_id); // NFTA_LOOKUP_SET_ID
    });
}

/// `[ nat KIND FAMILY addr_min reg A (proto_min reg P) ]`
pub fn nat(m: &mut MsgBuf, kind: u32, family: u8, addr_reg: u32, proto_reg: Option<u32>) {
    expr(m, "nat", |m| {
        m.attr_be32(1, kind); // NFTA_NAT_TYPE
        m.attr_be32(2, u32::from(family)); // NFTA_NAT_FAMILY
        m.attr_be32(3, addr_reg); // NFTA_NAT_REG_ADDR_MIN
        if let Some(p) = proto_reg {
            m.attr_be32(5, p); // NFTA_NAT_REG_PROTO_MIN
        }
    });
}

/// `[ immediate reg DREG DATA ]`
pub fn immediate(m: &mut MsgBuf, dreg: u32, data: &[u8]) {
    expr(m, "immediate", |m| {
        m.attr_be32(1, dreg); // NFTA_IMMEDIATE_DREG
        m.nest_begin(2); // NFTA_IMMEDIATE_DATA
        m.attr(NFTA_DATA_VALUE, data);
        m.nest_end();
    });
}

/// `[ redir proto_min reg SREG flags 0x2 ]`
pub fn redir(m: &mut MsgBuf, proto_reg: u32) {
    expr(m, "redir", |m| {
        m.attr_be32(1, proto_reg); // NFTA_REDIR_REG_PROTO_MIN
        m.attr_be32(3, NF_NAT_RANGE_PROTO_SPECIFIED); // NFTA_REDIR_FLAGS
    });
}

/// `[ ct set KEY with reg SREG ]`
pub fn ct_set(m: &mut MsgBuf, key: u32, sreg: u32) {
    expr(m, "ct", |m| {
        m.attr_be32(2, key); // NFTA_CT_KEY
        m.attr_be32(4, sreg); // NFTA_CT_SREG
    });
}

/// `[ ct load KEY => reg DREG ]`
pub fn ct_load(m: &mut MsgBuf, key: u32, dreg: u32) {
    expr(m, "ct", |m| {
        m.attr_be32(1, dreg); // NFTA_CT_DREG
        m.attr_be32(2, key); // NFTA_CT_KEY
    });
}

/// `[ log prefix PREFIX ]`
pub fn log(m: &mut MsgBuf, prefix: &str) {
    expr(m, "log", |m| m.attr_str(2, prefix)); // NFTA_LOG_PREFIX
}

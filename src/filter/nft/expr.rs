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
/// Where a looked-up value lands: after the key, so the key is still
/// there for the one-shot delete. IPv4 keys take 32-bit units 4–6 and
/// values units 8–9 (REG_2, REG32_05); IPv6 keys units 4–12 and values
/// units 13–17 (REG32_09, REG32_13). The kernel has units 4–19.
pub const REG32_05: u32 = 13;
pub const REG32_09: u32 = 17;
pub const REG32_13: u32 = 21;
/// Scratch register for immediates that must not clobber lookup results.
pub const REG32_14: u32 = 22;

pub const META_PRIORITY: u32 = 2;
pub const META_IIFNAME: u32 = 6;
pub const META_NFPROTO: u32 = 15;
pub const META_L4PROTO: u32 = 16;
pub const CT_MARK: u32 = 3;
pub const CT_PROTO_DST: u32 = 12;
pub const CT_SRC_IP: u32 = 19;
pub const CT_DST_IP: u32 = 20;
pub const CT_SRC_IP6: u32 = 21;
pub const CT_DST_IP6: u32 = 22;
const IP_CT_DIR_ORIGINAL: u8 = 0;
pub const FIB_RESULT_OIFNAME: u32 = 2;
pub const FIB_RESULT_ADDRTYPE: u32 = 3;
pub const FIB_F_DADDR: u32 = 2;
pub const RTN_LOCAL: u32 = 2;
const NFT_DYNSET_OP_DELETE: u32 = 2;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
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
    cmp(m, sreg, NFT_CMP_EQ, data);
}

/// `[ cmp neq reg SREG DATA ]`
pub fn cmp_neq(m: &mut MsgBuf, sreg: u32, data: &[u8]) {
    cmp(m, sreg, NFT_CMP_NEQ, data);
}

fn cmp(m: &mut MsgBuf, sreg: u32, op: u32, data: &[u8]) {
    expr(m, "cmp", |m| {
        m.attr_be32(1, sreg); // NFTA_CMP_SREG
        m.attr_be32(2, op); // NFTA_CMP_OP
        m.nest_begin(3); // NFTA_CMP_DATA
        m.attr(NFTA_DATA_VALUE, data);
        m.nest_end();
    });
}

/// `[ dynset delete reg_key KEY set NAME sreg_data DATA ]`: deletes the
/// element from the packet path (a map wants the data register too,
/// though a delete does not read it).
pub fn dynset_delete(m: &mut MsgBuf, set: &str, set_id: u32, key: u32, data: u32) {
    expr(m, "dynset", |m| {
        m.attr_be32(4, key); // NFTA_DYNSET_SREG_KEY
        m.attr_be32(5, data); // NFTA_DYNSET_SREG_DATA
        m.attr_be32(3, NFT_DYNSET_OP_DELETE); // NFTA_DYNSET_OP
        m.attr_str(1, set); // NFTA_DYNSET_SET_NAME
        m.attr_be32(2, set_id); // NFTA_DYNSET_SET_ID
    });
}

/// `[ ct load KEY => reg DREG , dir original ]`
pub fn ct_load_original(m: &mut MsgBuf, key: u32, dreg: u32) {
    expr(m, "ct", |m| {
        m.attr_be32(2, key); // NFTA_CT_KEY
        m.attr_be32(1, dreg); // NFTA_CT_DREG
        m.attr(3, &[IP_CT_DIR_ORIGINAL]); // NFTA_CT_DIRECTION
    });
}

/// `[ fib daddr RESULT => reg DREG ]`
pub fn fib_daddr(m: &mut MsgBuf, result: u32, dreg: u32) {
    expr(m, "fib", |m| {
        m.attr_be32(3, FIB_F_DADDR); // NFTA_FIB_FLAGS
        m.attr_be32(2, result); // NFTA_FIB_RESULT
        m.attr_be32(1, dreg); // NFTA_FIB_DREG
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

/// `[ nat KIND FAMILY addr_min reg A (proto_min reg P) (flags F) ]`.
/// nft sends the flags (`NF_NAT_RANGE_PROTO_SPECIFIED`) for a literal
/// `dnat to ADDR:PORT`, none for a map's address and port.
pub fn nat(
    m: &mut MsgBuf,
    kind: u32,
    family: u8,
    addr_reg: u32,
    proto_reg: Option<u32>,
    flags: Option<u32>,
) {
    expr(m, "nat", |m| {
        m.attr_be32(1, kind); // NFTA_NAT_TYPE
        m.attr_be32(2, u32::from(family)); // NFTA_NAT_FAMILY
        m.attr_be32(3, addr_reg); // NFTA_NAT_REG_ADDR_MIN
        if let Some(p) = proto_reg {
            m.attr_be32(5, p); // NFTA_NAT_REG_PROTO_MIN
        }
        if let Some(f) = flags {
            m.attr_be32(7, f); // NFTA_NAT_FLAGS
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
    // In nft's order (the kernel takes any).
    expr(m, "ct", |m| {
        m.attr_be32(2, key); // NFTA_CT_KEY
        m.attr_be32(1, dreg); // NFTA_CT_DREG
    });
}

/// `[ log prefix PREFIX ]`
pub fn log(m: &mut MsgBuf, prefix: &str) {
    expr(m, "log", |m| m.attr_str(2, prefix)); // NFTA_LOG_PREFIX
}

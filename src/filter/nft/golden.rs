//! Golden tests: the encoder's batches against what nft(8) sends for the
//! same objects (tests/golden/, captured with strace; see its README).

use super::expr::{self, NAT_DNAT};
use super::msg::{MsgBuf, NLA_F_NESTED, NLM_F_ACK, NLM_F_EXCL};
use super::objects::{self, Del, Family, Intercept, KeyFrom, Marks, NatRule, Value};
use std::net::IpAddr;

#[derive(Debug, PartialEq)]
enum Attr {
    Leaf(u16, Vec<u8>),
    Nest(u16, Vec<Attr>),
}

#[derive(Debug, PartialEq)]
struct Msg {
    kind: u16,
    flags: u16,
    family: u8,
    res_id: [u8; 2],
    attrs: Vec<Attr>,
}

fn u16_at(b: &[u8], i: usize, le: bool) -> u16 {
    let v = [b[i], b[i + 1]];
    if le {
        u16::from_le_bytes(v)
    } else {
        u16::from_ne_bytes(v)
    }
}

fn u32_at(b: &[u8], i: usize, le: bool) -> u32 {
    let v = [b[i], b[i + 1], b[i + 2], b[i + 3]];
    if le {
        u32::from_le_bytes(v)
    } else {
        u32::from_ne_bytes(v)
    }
}

/// Netlink headers are in the byte order of the machine that made them:
/// `le` for the captured x86 bytes, native for ours.
fn attrs(b: &[u8], le: bool) -> Vec<Attr> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= b.len() {
        let len = usize::from(u16_at(b, i, le));
        let kind = u16_at(b, i + 2, le);
        assert!(len >= 4 && i + len <= b.len(), "bad attribute at {i}");
        let payload = &b[i + 4..i + len];
        out.push(if kind & NLA_F_NESTED != 0 {
            Attr::Nest(kind & !NLA_F_NESTED, attrs(payload, le))
        } else {
            Attr::Leaf(kind, payload.to_vec())
        });
        i += (len + 3) & !3;
    }
    out
}

fn msgs(b: &[u8], le: bool) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 20 <= b.len() {
        let len = u32_at(b, i, le) as usize;
        let kind = u16_at(b, i + 4, le);
        let flags = u16_at(b, i + 6, le) & !(NLM_F_ACK | NLM_F_EXCL);
        let mut a = attrs(&b[i + 20..i + len], le);
        // Attributes only nft sends: set userdata (its own listing hints)
        // and the set id beside the set name of an element list.
        match kind & 0xff {
            9 => a.retain(|x| !matches!(x, Attr::Leaf(13, _))),
            12 | 14 => a.retain(|x| !matches!(x, Attr::Leaf(4, _))),
            _ => {}
        }
        out.push(Msg {
            kind,
            flags,
            family: b[i + 16],
            res_id: [b[i + 18], b[i + 19]],
            attrs: a,
        });
        i += len;
    }
    out
}

fn golden(hex: &str) -> Vec<Msg> {
    let hex = hex.trim();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    msgs(&bytes, true)
}

fn ours(body: impl FnOnce(&mut MsgBuf)) -> Vec<Msg> {
    let mut m = MsgBuf::default();
    m.batch_begin(0);
    body(&mut m);
    m.batch_end(2);
    msgs(m.bytes().expect("fits"), false)
}

const T: &str = "ftp-proxy";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn table() {
    let want = golden(include_str!("../../../tests/golden/table.hex"));
    assert_eq!(ours(|m| objects::table(m, 1, T, 0)), want);
}

#[test]
fn maps() {
    let dnat4 = |m: &mut MsgBuf| objects::map(m, 1, T, "dnat4", 1, Family::V4, Value::AddrPort);
    assert_eq!(
        ours(dnat4),
        golden(include_str!("../../../tests/golden/map4.hex"))
    );
    let snat4 = |m: &mut MsgBuf| objects::map(m, 1, T, "snat4", 1, Family::V4, Value::Addr);
    assert_eq!(
        ours(snat4),
        golden(include_str!("../../../tests/golden/smap4.hex"))
    );
    let dnat6 = |m: &mut MsgBuf| objects::map(m, 1, T, "dnat6", 1, Family::V6, Value::AddrPort);
    assert_eq!(
        ours(dnat6),
        golden(include_str!("../../../tests/golden/map6.hex"))
    );
}

#[test]
fn nat_chain() {
    let got = ours(|m| objects::base_chain(m, 1, T, "prerouting", "nat", 0, -100));
    assert_eq!(got, golden(include_str!("../../../tests/golden/chain.hex")));
}

/// Register numbers out of every expression: nft picks registers by its
/// own allocator, the proxy keeps the key alive past the lookup for the
/// one-shot delete, so the map rules differ from nft's in those only.
fn without_registers(msgs: Vec<Msg>) -> Vec<Msg> {
    fn expr_regs(name: &[u8]) -> &'static [u16] {
        match name {
            b"payload\0" | b"immediate\0" | b"cmp\0" => &[1],
            b"lookup\0" => &[2, 3],
            b"nat\0" => &[3, 5],
            b"meta\0" | b"ct\0" => &[1, 3, 4],
            b"dynset\0" => &[4, 5],
            _ => &[],
        }
    }
    fn scrub(attrs: &mut [Attr]) {
        for a in attrs.iter_mut() {
            let Attr::Nest(1, expr) = a else { continue };
            let name = match expr.first() {
                Some(Attr::Leaf(1, n)) => n.clone(),
                _ => continue,
            };
            for part in expr.iter_mut() {
                if let Attr::Nest(2, data) = part {
                    for d in data.iter_mut() {
                        if let Attr::Leaf(k, v) = d {
                            if expr_regs(&name).contains(k) && v.len() == 4 {
                                v.fill(0);
                            }
                        }
                    }
                }
            }
        }
    }
    msgs.into_iter()
        .map(|mut m| {
            for a in m.attrs.iter_mut() {
                if let Attr::Nest(4, exprs) = a {
                    scrub(exprs);
                }
            }
            m
        })
        .collect()
}

fn dnat_rule(fam: Family, set: &'static str, id: u32, one_shot: bool) -> NatRule<'static> {
    NatRule {
        chain: "prerouting",
        fam,
        set,
        set_id: id,
        kind: NAT_DNAT,
        value: Value::AddrPort,
        key: KeyFrom::Packet,
        one_shot,
        marks: Marks::default(),
    }
}

#[test]
fn dnat_rules() {
    // The set id is batch-local; nft numbered dnat6 3 in its capture.
    let rule = |r: NatRule<'static>| move |m: &mut MsgBuf| objects::nat_rule(m, 1, T, &r);
    let want4 = golden(include_str!("../../../tests/golden/rule4.hex"));
    let got4 = ours(rule(dnat_rule(Family::V4, "dnat4", 1, false)));
    assert_ne!(
        got4, want4,
        "the value lands past the key, not where nft puts it"
    );
    assert_eq!(without_registers(got4), without_registers(want4));
    let want6 = golden(include_str!("../../../tests/golden/rule6.hex"));
    let got6 = ours(rule(dnat_rule(Family::V6, "dnat6", 3, false)));
    assert_eq!(without_registers(got6), without_registers(want6));
}

/// nft's own `delete @dnat4 { key : value }` puts an IPv4 `addr . port`
/// value where the proxy's lookup does (reg 2, reg 13), so its bytes pin
/// the dynset delete and the value registers exactly.
#[test]
fn one_shot_delete() {
    let got = ours(|m| {
        m.nft_msg(6, 0x0c00, 1, objects::NFPROTO_INET);
        m.attr_str(1, T);
        m.attr_str(2, "prerouting");
        m.nest_begin(4);
        objects::load_key(m, Family::V4, KeyFrom::Packet);
        expr::immediate(m, expr::REG_2, &[1, 2, 3, 4]);
        expr::immediate(m, expr::REG32_05, &80u16.to_be_bytes());
        expr::dynset_delete(m, "dnat4", 1, expr::REG_1, expr::REG_2);
        m.nest_end();
        m.end_msg();
    });
    assert_eq!(
        got,
        golden(include_str!("../../../tests/golden/oneshot4.hex"))
    );
}

/// `ct original ip6 saddr … ct original ip6 daddr …`: the conntrack keys
/// the SNAT rule looks its map up with.
#[test]
fn conntrack_original_keys() {
    let got = ours(|m| {
        m.nft_msg(6, 0x0c00, 1, objects::NFPROTO_INET);
        m.attr_str(1, T);
        m.attr_str(2, "postrouting");
        m.nest_begin(4);
        for (key, a) in [
            (expr::CT_SRC_IP6, "2001:db8::1"),
            (expr::CT_DST_IP6, "2001:db8::2"),
        ] {
            expr::ct_load_original(m, key, expr::REG_1);
            let IpAddr::V6(a) = ip(a) else { unreachable!() };
            expr::cmp_eq(m, expr::REG_1, &a.octets());
        }
        m.nest_end();
        m.end_msg();
    });
    assert_eq!(
        got,
        golden(include_str!("../../../tests/golden/ctorig6.hex"))
    );
}

#[test]
fn intercept_rules() {
    let plain = Intercept {
        iface: "eth0",
        not_local: false,
        out: None,
        to: None,
    };
    let got = ours(|m| objects::intercept_rule(m, 1, T, "prerouting", &plain, Family::V4, 8021));
    assert_eq!(got, golden(include_str!("../../../tests/golden/redir.hex")));
    let zoned = Intercept {
        not_local: true,
        out: Some("wan"),
        ..plain
    };
    let got = ours(|m| objects::intercept_rule(m, 1, T, "prerouting", &zoned, Family::V4, 8021));
    // `fib daddr type` is a host-order u32 in the register: nft on x86
    // sent RTN_LOCAL (2) little-endian; a big-endian router compares it
    // in its own order.
    let mut want = golden(include_str!("../../../tests/golden/redirfib.hex"));
    let local = expr::RTN_LOCAL;
    let swapped = replace_leaf(&mut want, &local.to_le_bytes(), &local.to_ne_bytes());
    assert_eq!(swapped, 1);
    assert_eq!(got, want);
}

#[test]
fn intercept_to_the_listen_address() {
    let to = |a: &str| Intercept {
        iface: "eth0",
        not_local: false,
        out: None,
        to: Some(ip(a)),
    };
    let got = ours(|m| {
        objects::intercept_rule(m, 1, T, "prerouting", &to("198.18.1.1"), Family::V4, 8021)
    });
    assert_eq!(
        got,
        golden(include_str!("../../../tests/golden/dnatto.hex"))
    );
    let got = ours(|m| {
        objects::intercept_rule(m, 1, T, "prerouting", &to("2001:db8::1"), Family::V6, 8021)
    });
    assert_eq!(
        got,
        golden(include_str!("../../../tests/golden/dnatto6.hex"))
    );
}

#[test]
fn keeper_rule_is_what_nft_sends() {
    let got = ours(|m| objects::keeper_rule(m, 1, T, "hold"));
    assert_eq!(
        got,
        golden(include_str!("../../../tests/golden/keeper.hex"))
    );
    let got = ours(|m| objects::flush_chain(m, 1, T, "hold"));
    assert_eq!(got, golden(include_str!("../../../tests/golden/flush.hex")));
}

/// Replaces every leaf value `from` by `to`; how many it replaced.
fn replace_leaf(msgs: &mut [Msg], from: &[u8], to: &[u8]) -> usize {
    fn walk(attrs: &mut [Attr], from: &[u8], to: &[u8]) -> usize {
        attrs
            .iter_mut()
            .map(|a| match a {
                Attr::Leaf(_, v) if v == from => {
                    *v = to.to_vec();
                    1
                }
                Attr::Leaf(..) => 0,
                Attr::Nest(_, inner) => walk(inner, from, to),
            })
            .sum()
    }
    msgs.iter_mut().map(|m| walk(&mut m.attrs, from, to)).sum()
}

/// An element of dnat4 as the proxy adds it, for client port `port`.
fn add_element(port: u16, timeout: Option<u64>) -> Vec<Msg> {
    let key = objects::key(&ip("198.18.1.2"), &ip("198.19.2.2"), port);
    let val = objects::value(&ip("198.19.2.2"), Some(30000));
    ours(|m| objects::add_element(m, 1, T, "dnat4", key.bytes(), val.bytes(), timeout))
}

#[test]
fn elements() {
    let want = golden(include_str!("../../../tests/golden/elem4.hex"));
    assert_eq!(add_element(50000, Some(60_000)), want);
    let want = golden(include_str!("../../../tests/golden/elem4nt.hex"));
    assert_eq!(add_element(50000, None), want);
    let key = objects::key(&ip("198.18.1.2"), &ip("198.19.2.2"), 50000);
    let del = ours(|m| objects::del_element(m, 1, T, "dnat4", key.bytes(), Del::Delete));
    assert_eq!(
        del,
        golden(include_str!("../../../tests/golden/delelem4.hex"))
    );
}

/// The decoder itself must see differences, or the tests above prove
/// nothing.
#[test]
fn decoder_sees_a_changed_byte() {
    let want = golden(include_str!("../../../tests/golden/elem4.hex"));
    assert_ne!(add_element(50001, Some(60_000)), want);
}

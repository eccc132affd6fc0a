//! Golden tests: the encoder's batches against what nft(8) sends for the
//! same objects (tests/golden/, captured with strace; see its README).

use super::expr::NAT_DNAT;
use super::msg::{MsgBuf, NLA_F_NESTED, NLM_F_ACK, NLM_F_EXCL};
use super::objects::{self, Family, Marks, Value};
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

#[test]
fn dnat_rules() {
    // The set id is batch-local; nft numbered dnat6 3 in its capture.
    let rule = |fam, set, id| {
        move |m: &mut MsgBuf| {
            let v = Value::AddrPort;
            objects::nat_rule(
                m,
                1,
                T,
                "prerouting",
                fam,
                set,
                id,
                NAT_DNAT,
                v,
                Marks::default(),
            )
        }
    };
    let want4 = golden(include_str!("../../../tests/golden/rule4.hex"));
    assert_eq!(ours(rule(Family::V4, "dnat4", 1)), want4);
    let want6 = golden(include_str!("../../../tests/golden/rule6.hex"));
    assert_eq!(ours(rule(Family::V6, "dnat6", 3)), want6);
}

#[test]
fn intercept_rule() {
    let got = ours(|m| objects::intercept_rule(m, 1, T, "prerouting", "eth0", Family::V4, 8021));
    assert_eq!(got, golden(include_str!("../../../tests/golden/redir.hex")));
}

/// An element of dnat4 as the proxy adds it, for client port `port`.
fn add_element(port: u16) -> Vec<Msg> {
    let key = objects::key(&ip("198.18.1.2"), &ip("198.19.2.2"), port);
    let val = objects::value(&ip("198.19.2.2"), Some(30000));
    ours(|m| {
        objects::element(
            m,
            1,
            T,
            "dnat4",
            key.bytes(),
            Some(val.bytes()),
            Some(60_000),
        )
    })
}

#[test]
fn elements() {
    let want = golden(include_str!("../../../tests/golden/elem4.hex"));
    assert_eq!(add_element(50000), want);
    let key = objects::key(&ip("198.18.1.2"), &ip("198.19.2.2"), 50000);
    let del = ours(|m| objects::element(m, 1, T, "dnat4", key.bytes(), None, None));
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
    assert_ne!(add_element(50001), want);
}

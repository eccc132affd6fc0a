//! ctnetlink messages as the proxy reads them: the original tuple, the
//! conntrack id, the TCP state and the counters. Pure code.

use std::net::IpAddr;

pub const NFNL_SUBSYS_CTNETLINK: u16 = 1;
pub const IPCTNL_MSG_CT_NEW: u16 = 0;
pub const IPCTNL_MSG_CT_GET: u16 = 1;
pub const IPCTNL_MSG_CT_DELETE: u16 = 2;
/// nlmsghdr flag of a new connection's event.
pub const NLM_F_CREATE: u16 = 0x400;

pub const CTA_TUPLE_ORIG: u16 = 1;
pub const CTA_TUPLE_REPLY: u16 = 2;
pub const CTA_PROTOINFO: u16 = 4;
pub const CTA_MARK: u16 = 8;
pub const CTA_COUNTERS_ORIG: u16 = 9;
pub const CTA_COUNTERS_REPLY: u16 = 10;
pub const CTA_ID: u16 = 12;
pub const CTA_TUPLE_IP: u16 = 1;
pub const CTA_TUPLE_PROTO: u16 = 2;
pub const CTA_IP_V4_SRC: u16 = 1;
pub const CTA_IP_V4_DST: u16 = 2;
pub const CTA_IP_V6_SRC: u16 = 3;
pub const CTA_IP_V6_DST: u16 = 4;
pub const CTA_PROTO_NUM: u16 = 1;
pub const CTA_PROTO_SRC_PORT: u16 = 2;
pub const CTA_PROTO_DST_PORT: u16 = 3;
pub const CTA_PROTOINFO_TCP: u16 = 1;
pub const CTA_PROTOINFO_TCP_STATE: u16 = 1;
pub const CTA_COUNTERS_PACKETS: u16 = 1;
pub const CTA_COUNTERS_BYTES: u16 = 2;

/// TCP_CONNTRACK_TIME_WAIT and _CLOSE: nothing more will move.
pub const TCP_TIME_WAIT: u8 = 7;
pub const TCP_CLOSE: u8 = 8;

const NLA_TYPE_MASK: u16 = 0x3fff;

/// The attributes in `b`, as (type, payload).
pub struct Attrs<'a>(&'a [u8]);

impl<'a> Attrs<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Attrs(b)
    }

    pub fn find(b: &'a [u8], kind: u16) -> Option<&'a [u8]> {
        Attrs(b).find(|(k, _)| *k == kind).map(|(_, v)| v)
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.0;
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            self.0 = &[];
            return None;
        }
        let next = ((len + 3) & !3).min(b.len());
        self.0 = &b[next..];
        Some((kind, &b[4..len]))
    }
}

/// A connection's original direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

/// What one message said about one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub tuple: Tuple,
    pub id: u32,
    /// TCP state, when the message carries it.
    pub tcp_state: Option<u8>,
    /// Bytes in the original and the reply direction (with accounting).
    pub bytes: Option<(u64, u64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// IPCTNL_MSG_CT_NEW with NLM_F_CREATE: a new connection.
    New,
    /// IPCTNL_MSG_CT_NEW otherwise: an update, or the answer to a GET.
    Update,
    Destroy,
}

fn be16(v: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(v.get(..2)?.try_into().ok()?))
}

fn be32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
}

fn be64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

fn addr(v: &[u8]) -> Option<IpAddr> {
    match v.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
        _ => None,
    }
}

fn tuple(b: &[u8]) -> Option<Tuple> {
    let ip = Attrs::find(b, CTA_TUPLE_IP)?;
    let proto = Attrs::find(b, CTA_TUPLE_PROTO)?;
    if Attrs::find(proto, CTA_PROTO_NUM)?.first() != Some(&6) {
        return None;
    }
    let src = Attrs::find(ip, CTA_IP_V4_SRC).or_else(|| Attrs::find(ip, CTA_IP_V6_SRC))?;
    let dst = Attrs::find(ip, CTA_IP_V4_DST).or_else(|| Attrs::find(ip, CTA_IP_V6_DST))?;
    Some(Tuple {
        src: addr(src)?,
        dst: addr(dst)?,
        sport: be16(Attrs::find(proto, CTA_PROTO_SRC_PORT)?)?,
        dport: be16(Attrs::find(proto, CTA_PROTO_DST_PORT)?)?,
    })
}

fn counter_bytes(b: &[u8], kind: u16) -> Option<u64> {
    be64(Attrs::find(Attrs::find(b, kind)?, CTA_COUNTERS_BYTES)?)
}

/// One netlink message (header included), if it is a TCP conntrack
/// message the proxy can read.
pub fn parse(msg: &[u8]) -> Option<Event> {
    let kind = u16::from_ne_bytes(msg.get(4..6)?.try_into().ok()?);
    let flags = u16::from_ne_bytes(msg.get(6..8)?.try_into().ok()?);
    if kind >> 8 != NFNL_SUBSYS_CTNETLINK {
        return None;
    }
    let kind = match kind & 0xff {
        IPCTNL_MSG_CT_NEW if flags & NLM_F_CREATE != 0 => Kind::New,
        IPCTNL_MSG_CT_NEW => Kind::Update,
        IPCTNL_MSG_CT_DELETE => Kind::Destroy,
        _ => return None,
    };
    let attrs = msg.get(20..)?;
    let tcp_state = Attrs::find(attrs, CTA_PROTOINFO)
        .and_then(|p| Attrs::find(p, CTA_PROTOINFO_TCP))
        .and_then(|t| Attrs::find(t, CTA_PROTOINFO_TCP_STATE))
        .and_then(|s| s.first().copied());
    let bytes =
        counter_bytes(attrs, CTA_COUNTERS_ORIG).zip(counter_bytes(attrs, CTA_COUNTERS_REPLY));
    Some(Event {
        kind,
        tuple: tuple(Attrs::find(attrs, CTA_TUPLE_ORIG)?)?,
        id: be32(Attrs::find(attrs, CTA_ID)?)?,
        tcp_state,
        bytes,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::filter::nft::msg::MsgBuf;

    /// A destroy event as the kernel writes it, built with the encoder.
    pub fn sample(kind: u16, flags: u16, dport: u16) -> Vec<u8> {
        sample_with(kind, flags, dport, TCP_TIME_WAIT, true)
    }

    /// `sample` in TCP state `state`, with or without counters.
    pub fn sample_with(kind: u16, flags: u16, dport: u16, state: u8, counters: bool) -> Vec<u8> {
        let mut m = MsgBuf::default();
        m.begin_msg((NFNL_SUBSYS_CTNETLINK << 8) | kind, flags, 0, 2, 0);
        m.nest_begin(CTA_TUPLE_ORIG);
        m.nest_begin(CTA_TUPLE_IP);
        m.attr(CTA_IP_V4_SRC, &[198, 18, 1, 2]);
        m.attr(CTA_IP_V4_DST, &[198, 19, 2, 2]);
        m.nest_end();
        m.nest_begin(CTA_TUPLE_PROTO);
        m.attr(CTA_PROTO_NUM, &[6]);
        m.attr(CTA_PROTO_SRC_PORT, &40000u16.to_be_bytes());
        m.attr(CTA_PROTO_DST_PORT, &dport.to_be_bytes());
        m.nest_end();
        m.nest_end();
        m.nest_begin(CTA_PROTOINFO);
        m.nest_begin(CTA_PROTOINFO_TCP);
        m.attr(CTA_PROTOINFO_TCP_STATE, &[state]);
        m.nest_end();
        m.nest_end();
        m.attr_be32(CTA_MARK, 7);
        let counted = [
            (CTA_COUNTERS_ORIG, 1000u64),
            (CTA_COUNTERS_REPLY, 1_500_000),
        ];
        for (k, b) in counted.into_iter().filter(|_| counters) {
            m.nest_begin(k);
            m.attr_be64(CTA_COUNTERS_PACKETS, 10);
            m.attr_be64(CTA_COUNTERS_BYTES, b);
            m.nest_end();
        }
        m.attr_be32(CTA_ID, 0xdead_beef);
        m.end_msg();
        m.bytes().unwrap().to_vec()
    }

    #[test]
    fn reads_tuple_id_state_and_counters() {
        let e = parse(&sample(IPCTNL_MSG_CT_DELETE, 0, 50000)).unwrap();
        assert_eq!(e.kind, Kind::Destroy);
        assert_eq!(e.tuple.src, "198.18.1.2".parse::<IpAddr>().unwrap());
        assert_eq!((e.tuple.sport, e.tuple.dport), (40000, 50000));
        assert_eq!(e.id, 0xdead_beef);
        assert_eq!(e.tcp_state, Some(TCP_TIME_WAIT));
        assert_eq!(e.bytes, Some((1000, 1_500_000)));
        assert_eq!(
            parse(&sample(IPCTNL_MSG_CT_NEW, 0x400, 1)).unwrap().kind,
            Kind::New
        );
        assert_eq!(
            parse(&sample(IPCTNL_MSG_CT_NEW, 0, 1)).unwrap().kind,
            Kind::Update
        );
    }

    #[test]
    fn truncated_or_foreign_messages_are_skipped() {
        let m = sample(IPCTNL_MSG_CT_DELETE, 0, 50000);
        for n in 0..m.len() - 8 {
            // No panic, whatever is cut off; a cut CTA_ID loses the event.
            let _ = parse(&m[..n]);
        }
        let mut other = m.clone();
        other[5] = 10; // nf_tables, not ctnetlink
        assert_eq!(parse(&other), None);
    }
}

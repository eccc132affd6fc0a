//! Netlink message and attribute encoder over a fixed buffer.
//!
//! Netlink headers and attribute headers are in host byte order; nf_tables
//! attribute *values* are big-endian (NLA_BE32/BE64), as the kernel's
//! nla_get_be32() reads them. The difference shows on big-endian routers,
//! which is why both are spelled out here.

/// Netlink constants (linux/netlink.h, linux/netfilter/nfnetlink.h).
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_APPEND: u16 = 0x800;
pub const NLA_F_NESTED: u16 = 0x8000;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
pub const NFNL_MSG_BATCH_END: u16 = 0x11;
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
pub const NLMSG_HDRLEN: usize = 16;
pub const NFGENMSG_LEN: usize = 4;

/// Largest batch the proxy sends (the start-up ruleset is about 2 KiB).
pub const MSG_CAP: usize = 8192;
const MAX_NEST: usize = 8;

#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

/// One or more netlink messages being built.
pub struct MsgBuf {
    buf: [u8; MSG_CAP],
    len: usize,
    msg_start: usize,
    nests: heapless::Vec<usize, MAX_NEST>,
    overflow: bool,
}

impl Default for MsgBuf {
    fn default() -> Self {
        MsgBuf {
            buf: [0; MSG_CAP],
            len: 0,
            msg_start: 0,
            nests: heapless::Vec::new(),
            overflow: false,
        }
    }
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl MsgBuf {
    pub fn clear(&mut self) {
        self.len = 0;
        self.msg_start = 0;
        self.nests.clear();
        self.overflow = false;
    }

    /// The encoded bytes, or `Overflow` if anything did not fit.
    pub fn bytes(&self) -> Result<&[u8], Overflow> {
        if self.overflow || !self.nests.is_empty() {
            return Err(Overflow);
        }
        Ok(&self.buf[..self.len])
    }

    fn put(&mut self, data: &[u8]) {
        let end = self.len + data.len();
        let padded = align4(end);
        if padded > MSG_CAP {
            self.overflow = true;
            return;
        }
        self.buf[self.len..end].copy_from_slice(data);
        self.buf[end..padded].fill(0);
        self.len = padded;
    }

    /// Starts a message: nlmsghdr (length patched by `end_msg`) + nfgenmsg.
    pub fn begin_msg(&mut self, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) {
        self.msg_start = self.len;
        let mut h = [0u8; NLMSG_HDRLEN + NFGENMSG_LEN];
        h[4..6].copy_from_slice(&kind.to_ne_bytes());
        h[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        h[8..12].copy_from_slice(&seq.to_ne_bytes());
        // nfgenmsg: family, version NFNETLINK_V0, res_id in network order.
        h[16] = family;
        h[18..20].copy_from_slice(&res_id.to_be_bytes());
        self.put(&h);
    }

    pub fn end_msg(&mut self) {
        if self.overflow {
            return;
        }
        let len = (self.len - self.msg_start) as u32;
        self.buf[self.msg_start..self.msg_start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// nf_tables message type for `msg` (NFT_MSG_*).
    pub fn nft_msg(&mut self, msg: u16, flags: u16, seq: u32, family: u8) {
        self.begin_msg((NFNL_SUBSYS_NFTABLES << 8) | msg, flags, seq, family, 0);
    }

    pub fn batch_begin(&mut self, seq: u32) {
        self.begin_msg(NFNL_MSG_BATCH_BEGIN, 0, seq, 0, NFNL_SUBSYS_NFTABLES);
        self.end_msg();
    }

    /// Ends a batch, and asks for an ACK of its last message only. The
    /// kernel reports an error of any message whether asked or not, all
    /// of them before that last ACK, which so says the batch is done: one
    /// answer to read where there was one per message.
    pub fn batch_end(&mut self, seq: u32) {
        // Offset 0 is BATCH_BEGIN: an empty batch has nothing to ACK.
        if self.msg_start > 0 && !self.overflow {
            let at = self.msg_start + 6;
            let flags = u16::from_ne_bytes([self.buf[at], self.buf[at + 1]]) | NLM_F_ACK;
            self.buf[at..at + 2].copy_from_slice(&flags.to_ne_bytes());
        }
        self.begin_msg(NFNL_MSG_BATCH_END, 0, seq, 0, NFNL_SUBSYS_NFTABLES);
        self.end_msg();
    }

    pub fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = 4 + data.len();
        if len > usize::from(u16::MAX) {
            self.overflow = true;
            return;
        }
        let mut h = [0u8; 4];
        h[..2].copy_from_slice(&(len as u16).to_ne_bytes());
        h[2..].copy_from_slice(&kind.to_ne_bytes());
        let start = self.len;
        self.put(&h);
        if self.overflow {
            return;
        }
        // Header and payload are one attribute: pad only after the payload.
        self.len = start + 4;
        self.put(data);
    }

    pub fn attr_str(&mut self, kind: u16, s: &str) {
        let n = s.len();
        let mut tmp = [0u8; 256];
        if n >= tmp.len() {
            self.overflow = true;
            return;
        }
        tmp[..n].copy_from_slice(s.as_bytes());
        self.attr(kind, &tmp[..=n]);
    }

    pub fn attr_be32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_be_bytes());
    }

    pub fn attr_be64(&mut self, kind: u16, v: u64) {
        self.attr(kind, &v.to_be_bytes());
    }

    pub fn nest_begin(&mut self, kind: u16) {
        if self.nests.push(self.len).is_err() {
            self.overflow = true;
            return;
        }
        self.put(&[0, 0, 0, 0]);
        let k = (kind | NLA_F_NESTED).to_ne_bytes();
        if !self.overflow {
            let at = self.len - 4;
            self.buf[at + 2..at + 4].copy_from_slice(&k);
        }
    }

    pub fn nest_end(&mut self) {
        let Some(start) = self.nests.pop() else {
            self.overflow = true;
            return;
        };
        if self.overflow {
            return;
        }
        let len = (self.len - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested() {
        let mut m = MsgBuf::default();
        m.nft_msg(0, NLM_F_ACK, 7, 1);
        m.attr_str(1, "ab");
        m.nest_begin(2);
        m.attr_be32(1, 0x0102_0304);
        m.nest_end();
        m.end_msg();
        let b = m.bytes().unwrap();
        assert_eq!(b.len(), 16 + 4 + 8 + 4 + 8);
        assert_eq!(&b[0..4], &(b.len() as u32).to_ne_bytes());
        assert_eq!(&b[4..6], &(10u16 << 8).to_ne_bytes());
        assert_eq!(&b[6..8], &(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        assert_eq!(&b[8..12], &7u32.to_ne_bytes());
        assert_eq!(&b[16..20], &[1, 0, 0, 0]);
        // "ab\0" attribute: len 7, padded to 8.
        assert_eq!(&b[20..22], &7u16.to_ne_bytes());
        assert_eq!(&b[24..28], b"ab\0\0");
        // Nest of one 8-byte attribute: len 12, NESTED bit set.
        assert_eq!(&b[28..30], &12u16.to_ne_bytes());
        assert_eq!(&b[30..32], &(2 | NLA_F_NESTED).to_ne_bytes());
        assert_eq!(&b[36..40], &[1, 2, 3, 4]);
    }

    #[test]
    fn a_batch_asks_for_one_ack_the_last_messages() {
        let mut m = MsgBuf::default();
        m.batch_begin(10);
        for seq in 11..=13 {
            m.nft_msg(12, NLM_F_CREATE, seq, 1);
            m.attr_str(1, "t");
            m.end_msg();
        }
        m.batch_end(14);
        let b = m.bytes().unwrap();
        let mut acked = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let len = u32::from_ne_bytes(b[i..i + 4].try_into().unwrap()) as usize;
            let flags = u16::from_ne_bytes([b[i + 6], b[i + 7]]);
            let seq = u32::from_ne_bytes(b[i + 8..i + 12].try_into().unwrap());
            assert_ne!(flags & NLM_F_REQUEST, 0);
            if flags & NLM_F_ACK != 0 {
                acked.push(seq);
            }
            i += align4(len);
        }
        assert_eq!(i, b.len());
        assert_eq!(acked, [13], "only the last message before BATCH_END");
    }

    #[test]
    fn overflow_is_reported_not_truncated() {
        let mut m = MsgBuf::default();
        m.nft_msg(0, 0, 1, 1);
        for _ in 0..MSG_CAP / 8 {
            m.attr_be32(1, 1);
        }
        m.end_msg();
        assert_eq!(m.bytes(), Err(Overflow));
        m.clear();
        m.nest_begin(1);
        assert_eq!(m.bytes(), Err(Overflow), "an open nest is an error");
    }
}

//! FreeBSD's pf ioctl ABI for DIOCADDRULE and friends (the structures of
//! sys/netpfil/pf/pf.h and sys/net/pfvar.h that pf(4) documents, FreeBSD
//! 14 and 15): NAT and RDR are rulesets of their own, and a rule's address
//! pool is filled through DIOCBEGINADDRS/DIOCADDADDR before DIOCADDRULE.
//! Plain data: compiled on every target so the layout tests run on Linux.

use super::openbsd::{iowr, IFNAMSIZ, PATH_MAX, PF_QNAME_SIZE};
pub use super::openbsd::{PfAddr, PfAddrWrap};
use super::openbsd::{PfRuleUid, PF_RULE_LABEL_SIZE, PF_TABLE_NAME_SIZE, PF_TAG_NAME_SIZE};
use std::mem::size_of;

const PFTM_MAX: usize = 20;
const PF_SKIP_COUNT: usize = 8;

pub const PF_IN: u8 = 1;
pub const PF_OUT: u8 = 2;
pub const PF_PASS: u8 = 0;
pub const PF_NAT: u8 = 4;
pub const PF_RDR: u8 = 8;
pub const PF_RULESET_FILTER: i32 = 1;
pub const PF_RULESET_NAT: i32 = 2;
pub const PF_RULESET_RDR: i32 = 4;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 28;

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PfRuleAddr {
    pub addr: PfAddrWrap,
    /// Network byte order.
    pub port: [u16; 2],
    pub neg: u8,
    pub port_op: u8,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PfPooladdr {
    pub addr: PfAddrWrap,
    pub entries: [usize; 2],
    pub ifname: [u8; IFNAMSIZ],
    pub kif: usize,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PfPool {
    pub list: [usize; 2],
    pub cur: usize,
    pub key: PfAddr,
    pub counter: PfAddr,
    pub tblidx: i32,
    /// Host byte order.
    pub proxy_port: [u16; 2],
    pub opts: u8,
}

/// `struct pf_rule` as the ioctl interface takes it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PfRule {
    pub src: PfRuleAddr,
    pub dst: PfRuleAddr,
    pub skip: [usize; PF_SKIP_COUNT],
    pub label: [u8; PF_RULE_LABEL_SIZE],
    pub ifname: [u8; IFNAMSIZ],
    pub qname: [u8; PF_QNAME_SIZE],
    pub pqname: [u8; PF_QNAME_SIZE],
    pub tagname: [u8; PF_TAG_NAME_SIZE],
    pub match_tagname: [u8; PF_TAG_NAME_SIZE],
    pub overload_tblname: [u8; PF_TABLE_NAME_SIZE],
    pub entries: [usize; 2],
    pub rpool: PfPool,
    pub evaluations: u64,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub kif: usize,
    pub anchor: usize,
    pub overload_tbl: usize,
    pub os_fingerprint: u32,
    pub rtableid: i32,
    pub timeout: [u32; PFTM_MAX],
    pub max_states: u32,
    pub max_src_nodes: u32,
    pub max_src_states: u32,
    pub max_src_conn: u32,
    pub max_src_conn_rate: [u32; 2],
    pub qid: u32,
    pub pqid: u32,
    pub rt_listid: u32,
    pub nr: u32,
    pub prob: u32,
    pub cuid: u32,
    pub cpid: i32,
    pub states_cur: usize,
    pub states_tot: usize,
    pub src_nodes: usize,
    pub return_icmp: u16,
    pub return_icmp6: u16,
    pub max_mss: u16,
    pub tag: u16,
    pub match_tag: u16,
    pub scrub_flags: u16,
    pub uid: PfRuleUid,
    pub gid: PfRuleUid,
    pub rule_flag: u32,
    pub action: u8,
    pub direction: u8,
    pub log: u8,
    pub logif: u8,
    pub quick: u8,
    pub ifnot: u8,
    pub match_tag_not: u8,
    pub natpass: u8,
    pub keep_state: u8,
    pub af: u8,
    pub proto: u8,
    pub kind: u8,
    pub code: u8,
    pub flags: u8,
    pub flagset: u8,
    pub min_ttl: u8,
    pub allow_opts: u8,
    pub rt: u8,
    pub return_ttl: u8,
    pub tos: u8,
    pub set_tos: u8,
    pub anchor_relative: u8,
    pub anchor_wildcard: u8,
    pub flush: u8,
    pub prio: u8,
    pub set_prio: [u8; 2],
    pub divert_addr: PfAddr,
    pub divert_port: u16,
    pub u_states_cur: u64,
    pub u_states_tot: u64,
    pub u_src_nodes: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PfiocPooladdr {
    pub action: u32,
    pub ticket: u32,
    pub nr: u32,
    pub r_num: u32,
    pub r_action: u8,
    pub r_last: u8,
    pub af: u8,
    pub anchor: [u8; PATH_MAX],
    pub addr: PfPooladdr,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PfiocRule {
    pub action: u32,
    pub ticket: u32,
    pub pool_ticket: u32,
    pub nr: u32,
    pub anchor: [u8; PATH_MAX],
    pub anchor_call: [u8; PATH_MAX],
    pub rule: PfRule,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PfiocNatlook {
    pub saddr: PfAddr,
    pub daddr: PfAddr,
    pub rsaddr: PfAddr,
    pub rdaddr: PfAddr,
    /// Ports in network byte order.
    pub sport: u16,
    pub dport: u16,
    pub rsport: u16,
    pub rdport: u16,
    pub af: u8,
    pub proto: u8,
    pub direction: u8,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PfStatus {
    pub counters: [u64; 45],
    pub running: u32,
    pub rest: [u32; 5],
    pub ifname: [u8; IFNAMSIZ],
    pub pf_chksum: [u8; 16],
}

/// `struct pfioc_trans_e` of FreeBSD names its first field `rs_num`; the
/// layout is OpenBSD's.
pub use super::openbsd::{PfiocTrans, PfiocTransE};

zeroed_default!(PfRule, PfiocPooladdr, PfiocRule, PfStatus);

pub const DIOCADDRULE: u64 = iowr(b'D', 4, size_of::<PfiocRule>());
pub const DIOCGETSTATUS: u64 = iowr(b'D', 21, size_of::<PfStatus>());
pub const DIOCNATLOOK: u64 = iowr(b'D', 23, size_of::<PfiocNatlook>());
pub const DIOCBEGINADDRS: u64 = iowr(b'D', 51, size_of::<PfiocPooladdr>());
pub const DIOCADDADDR: u64 = iowr(b'D', 52, size_of::<PfiocPooladdr>());
/// The transaction ioctls and their structure are OpenBSD's.
pub use super::openbsd::{DIOCXBEGIN, DIOCXCOMMIT, DIOCXROLLBACK};

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    //! Sizes and offsets printed by gcc -m64 for the structure definitions
    //! of FreeBSD's pf.h/pfvar.h (amd64).
    use super::*;
    use crate::filter::pf::offset;

    #[test]
    fn sizes_match_pf_h() {
        assert_eq!(size_of::<PfRuleAddr>(), 56);
        assert_eq!(size_of::<PfPooladdr>(), 88);
        assert_eq!(size_of::<PfPool>(), 72);
        assert_eq!(size_of::<PfRule>(), 976);
        assert_eq!(size_of::<PfiocPooladdr>(), 1136);
        assert_eq!(size_of::<PfiocRule>(), 3040);
        assert_eq!(size_of::<PfiocNatlook>(), 76);
        assert_eq!(size_of::<PfStatus>(), 416);
    }

    #[test]
    fn offsets_match_pf_h() {
        let a = PfPooladdr::default();
        assert_eq!(offset(&a, &a.entries), 48);
        assert_eq!(offset(&a, &a.ifname), 64);
        assert_eq!(offset(&a, &a.kif), 80);
        let p = PfPool::default();
        assert_eq!(offset(&p, &p.cur), 16);
        assert_eq!(offset(&p, &p.key), 24);
        assert_eq!(offset(&p, &p.counter), 40);
        assert_eq!(offset(&p, &p.tblidx), 56);
        assert_eq!(offset(&p, &p.proxy_port), 60);
        assert_eq!(offset(&p, &p.opts), 64);
        let r = PfRule::default();
        for (got, want, name) in [
            (offset(&r, &r.skip), 112, "skip"),
            (offset(&r, &r.label), 176, "label"),
            (offset(&r, &r.qname), 256, "qname"),
            (offset(&r, &r.tagname), 384, "tagname"),
            (offset(&r, &r.entries), 544, "entries"),
            (offset(&r, &r.rpool), 560, "rpool"),
            (offset(&r, &r.evaluations), 632, "evaluations"),
            (offset(&r, &r.os_fingerprint), 696, "os_fingerprint"),
            (offset(&r, &r.rtableid), 700, "rtableid"),
            (offset(&r, &r.timeout), 704, "timeout"),
            (offset(&r, &r.max_states), 784, "max_states"),
            (offset(&r, &r.states_cur), 840, "states_cur"),
            (offset(&r, &r.return_icmp), 864, "return_icmp"),
            (offset(&r, &r.uid), 876, "uid"),
            (offset(&r, &r.rule_flag), 900, "rule_flag"),
            (offset(&r, &r.action), 904, "action"),
            (offset(&r, &r.quick), 908, "quick"),
            (offset(&r, &r.natpass), 911, "natpass"),
            (offset(&r, &r.keep_state), 912, "keep_state"),
            (offset(&r, &r.af), 913, "af"),
            (offset(&r, &r.flags), 917, "flags"),
            (offset(&r, &r.prio), 928, "prio"),
            (offset(&r, &r.set_prio), 929, "set_prio"),
            (offset(&r, &r.divert_addr), 932, "divert"),
            (offset(&r, &r.u_states_cur), 952, "u_states_cur"),
        ] {
            assert_eq!(got, want, "pf_rule.{name}");
        }
        let pp = PfiocPooladdr::default();
        assert_eq!(offset(&pp, &pp.anchor), 19);
        assert_eq!(offset(&pp, &pp.addr), 1048);
        let io = PfiocRule::default();
        assert_eq!(offset(&io, &io.anchor), 16);
        assert_eq!(offset(&io, &io.anchor_call), 1040);
        assert_eq!(offset(&io, &io.rule), 2064);
        let n = PfiocNatlook::default();
        assert_eq!(offset(&n, &n.rdaddr), 48);
        assert_eq!(offset(&n, &n.sport), 64);
        assert_eq!(offset(&n, &n.rdport), 70);
        assert_eq!(offset(&n, &n.af), 72);
        let s = PfStatus::default();
        assert_eq!(offset(&s, &s.running), 360);
        assert_eq!(offset(&s, &s.ifname), 384);
    }
}

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
/// Gone from FreeBSD 15, whose pfvar.h keeps only DIOCGETSTATUSNV (an
/// nvlist in `struct pfioc_nv`, three words) at 'D' 21: `dev::Common::open`
/// takes "unknown ioctl" as "cannot tell", not as "pf is off".
pub const DIOCGETSTATUS: u64 = iowr(b'D', 21, size_of::<PfStatus>());
pub const DIOCGETSTATUSNV: u64 = iowr(b'D', 21, 3 * size_of::<usize>());
pub const DIOCNATLOOK: u64 = iowr(b'D', 23, size_of::<PfiocNatlook>());
pub const DIOCBEGINADDRS: u64 = iowr(b'D', 51, size_of::<PfiocPooladdr>());
pub const DIOCADDADDR: u64 = iowr(b'D', 52, size_of::<PfiocPooladdr>());
/// The transaction ioctls and their structure are OpenBSD's.
pub use super::openbsd::{DIOCXBEGIN, DIOCXCOMMIT, DIOCXROLLBACK};

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    //! Every size, offset and ioctl number clang printed for the real
    //! pf.h/pfvar.h (bsd/abi/pf-layout.txt), against these declarations.
    use super::*;
    use crate::filter::pf::{check_layout, offset};

    #[test]
    fn layout_matches_the_real_pf_h() {
        let (w, a, p) = (
            PfAddrWrap::default(),
            PfRuleAddr::default(),
            PfPool::default(),
        );
        let (pa, r, io) = (
            PfPooladdr::default(),
            PfRule::default(),
            PfiocRule::default(),
        );
        let (pp, n, s) = (
            PfiocPooladdr::default(),
            PfiocNatlook::default(),
            PfStatus::default(),
        );
        let e = PfiocTransE::default();
        let t = PfiocTrans {
            size: 0,
            esize: 0,
            array: std::ptr::null_mut(),
        };
        let o = |base: usize| base as u64;
        check_layout(
            "freebsd",
            &[
                ("size__pf_addr", size_of::<PfAddr>() as u64),
                ("size__pf_addr_wrap", size_of::<PfAddrWrap>() as u64),
                ("size__pf_rule_addr", size_of::<PfRuleAddr>() as u64),
                ("size__pf_pool", size_of::<PfPool>() as u64),
                ("size__pf_rule", size_of::<PfRule>() as u64),
                ("size__pfioc_rule", size_of::<PfiocRule>() as u64),
                ("size__pfioc_trans_e", size_of::<PfiocTransE>() as u64),
                ("size__pfioc_trans", size_of::<PfiocTrans>() as u64),
                ("size__pf_status", size_of::<PfStatus>() as u64),
                ("size__pf_pooladdr", size_of::<PfPooladdr>() as u64),
                ("size__pfioc_pooladdr", size_of::<PfiocPooladdr>() as u64),
                ("size__pfioc_natlook", size_of::<PfiocNatlook>() as u64),
                ("off__pf_addr_wrap__p", o(offset(&w, &w.p))),
                ("off__pf_addr_wrap__type", o(offset(&w, &w.kind))),
                ("off__pf_rule_addr__port", o(offset(&a, &a.port))),
                ("off__pf_rule_addr__port_op", o(offset(&a, &a.port_op))),
                ("off__pf_pooladdr__entries", o(offset(&pa, &pa.entries))),
                ("off__pf_pooladdr__ifname", o(offset(&pa, &pa.ifname))),
                ("off__pf_pooladdr__kif", o(offset(&pa, &pa.kif))),
                ("off__pf_pool__cur", o(offset(&p, &p.cur))),
                ("off__pf_pool__key", o(offset(&p, &p.key))),
                ("off__pf_pool__counter", o(offset(&p, &p.counter))),
                ("off__pf_pool__tblidx", o(offset(&p, &p.tblidx))),
                ("off__pf_pool__proxy_port", o(offset(&p, &p.proxy_port))),
                ("off__pf_pool__opts", o(offset(&p, &p.opts))),
                ("off__pf_rule__dst", o(offset(&r, &r.dst))),
                ("off__pf_rule__skip", o(offset(&r, &r.skip))),
                ("off__pf_rule__label", o(offset(&r, &r.label))),
                ("off__pf_rule__qname", o(offset(&r, &r.qname))),
                ("off__pf_rule__tagname", o(offset(&r, &r.tagname))),
                ("off__pf_rule__entries", o(offset(&r, &r.entries))),
                ("off__pf_rule__rpool", o(offset(&r, &r.rpool))),
                ("off__pf_rule__evaluations", o(offset(&r, &r.evaluations))),
                (
                    "off__pf_rule__os_fingerprint",
                    o(offset(&r, &r.os_fingerprint)),
                ),
                ("off__pf_rule__rtableid", o(offset(&r, &r.rtableid))),
                ("off__pf_rule__timeout", o(offset(&r, &r.timeout))),
                ("off__pf_rule__max_states", o(offset(&r, &r.max_states))),
                ("off__pf_rule__cuid", o(offset(&r, &r.cuid))),
                ("off__pf_rule__states_cur", o(offset(&r, &r.states_cur))),
                ("off__pf_rule__return_icmp", o(offset(&r, &r.return_icmp))),
                ("off__pf_rule__uid", o(offset(&r, &r.uid))),
                ("off__pf_rule__rule_flag", o(offset(&r, &r.rule_flag))),
                ("off__pf_rule__action", o(offset(&r, &r.action))),
                ("off__pf_rule__log", o(offset(&r, &r.log))),
                ("off__pf_rule__quick", o(offset(&r, &r.quick))),
                ("off__pf_rule__natpass", o(offset(&r, &r.natpass))),
                ("off__pf_rule__keep_state", o(offset(&r, &r.keep_state))),
                ("off__pf_rule__af", o(offset(&r, &r.af))),
                ("off__pf_rule__proto", o(offset(&r, &r.proto))),
                ("off__pf_rule__type", o(offset(&r, &r.kind))),
                ("off__pf_rule__flags", o(offset(&r, &r.flags))),
                ("off__pf_rule__flagset", o(offset(&r, &r.flagset))),
                ("off__pf_rule__prio", o(offset(&r, &r.prio))),
                ("off__pf_rule__set_prio", o(offset(&r, &r.set_prio))),
                ("off__pf_rule__divert", o(offset(&r, &r.divert_addr))),
                ("off__pf_rule__u_states_cur", o(offset(&r, &r.u_states_cur))),
                ("off__pfioc_rule__ticket", o(offset(&io, &io.ticket))),
                (
                    "off__pfioc_rule__pool_ticket",
                    o(offset(&io, &io.pool_ticket)),
                ),
                ("off__pfioc_rule__anchor", o(offset(&io, &io.anchor))),
                (
                    "off__pfioc_rule__anchor_call",
                    o(offset(&io, &io.anchor_call)),
                ),
                ("off__pfioc_rule__rule", o(offset(&io, &io.rule))),
                ("off__pfioc_pooladdr__ticket", o(offset(&pp, &pp.ticket))),
                ("off__pfioc_pooladdr__af", o(offset(&pp, &pp.af))),
                ("off__pfioc_pooladdr__anchor", o(offset(&pp, &pp.anchor))),
                ("off__pfioc_pooladdr__addr", o(offset(&pp, &pp.addr))),
                ("off__pfioc_natlook__rdaddr", o(offset(&n, &n.rdaddr))),
                ("off__pfioc_natlook__sport", o(offset(&n, &n.sport))),
                ("off__pfioc_natlook__rdport", o(offset(&n, &n.rdport))),
                ("off__pfioc_natlook__af", o(offset(&n, &n.af))),
                ("off__pfioc_natlook__direction", o(offset(&n, &n.direction))),
                ("off__pfioc_trans_e__anchor", o(offset(&e, &e.anchor))),
                ("off__pfioc_trans_e__ticket", o(offset(&e, &e.ticket))),
                ("off__pfioc_trans__array", o(offset(&t, &t.array))),
                ("off__pf_status__running", o(offset(&s, &s.running))),
                ("off__pf_status__ifname", o(offset(&s, &s.ifname))),
                ("ioc__DIOCADDRULE", DIOCADDRULE),
                ("ioc__DIOCGETSTATUS", DIOCGETSTATUS),
                ("ioc__DIOCGETSTATUSNV", DIOCGETSTATUSNV),
                ("ioc__DIOCNATLOOK", DIOCNATLOOK),
                ("ioc__DIOCBEGINADDRS", DIOCBEGINADDRS),
                ("ioc__DIOCADDADDR", DIOCADDADDR),
                ("ioc__DIOCXBEGIN", DIOCXBEGIN),
                ("ioc__DIOCXCOMMIT", DIOCXCOMMIT),
                ("ioc__DIOCXROLLBACK", DIOCXROLLBACK),
            ],
        );
    }
}

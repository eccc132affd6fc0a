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
/// The transaction ioctls and their structure are OpenBSD's, and so are
/// the anchor listing's.
pub use super::openbsd::{
    PfiocRuleset, DIOCGETRULESET, DIOCGETRULESETS, DIOCXBEGIN, DIOCXCOMMIT, DIOCXROLLBACK,
};
/// The number of rules in an anchor's ruleset (and a ticket), then one
/// of them with its counters: how the proxy sees that a mapping's state
/// exists (FreeBSD's pf has no one-shot rules).
pub const DIOCGETRULES: u64 = iowr(b'D', 6, size_of::<PfiocRule>());
pub const DIOCGETRULE: u64 = iowr(b'D', 7, size_of::<PfiocRule>());

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    //! Every size, offset and ioctl number clang printed for the real
    //! pf.h/pfvar.h (bsd/abi/pf-layout.txt), against these declarations.
    use super::*;
    use crate::filter::pf::{check_layout, layout};

    #[test]
    fn layout_matches_the_real_pf_h() {
        let (w, a, pa, p) = (
            PfAddrWrap::default(),
            PfRuleAddr::default(),
            PfPooladdr::default(),
            PfPool::default(),
        );
        let (r, io, pp, n) = (
            PfRule::default(),
            PfiocRule::default(),
            PfiocPooladdr::default(),
            PfiocNatlook::default(),
        );
        let (e, s, rs) = (
            PfiocTransE::default(),
            PfStatus::default(),
            PfiocRuleset::default(),
        );
        let t = PfiocTrans {
            size: 0,
            esize: 0,
            array: std::ptr::null_mut(),
        };
        let ours = [
            &layout!(sizes:
                PfAddr = "pf_addr", PfAddrWrap = "pf_addr_wrap",
                PfRuleAddr = "pf_rule_addr", PfPool = "pf_pool", PfRule = "pf_rule",
                PfiocRule = "pfioc_rule", PfiocTransE = "pfioc_trans_e",
                PfiocTrans = "pfioc_trans", PfStatus = "pf_status",
                PfPooladdr = "pf_pooladdr", PfiocPooladdr = "pfioc_pooladdr",
                PfiocNatlook = "pfioc_natlook", PfiocRuleset = "pfioc_ruleset")[..],
            &layout!(w = "pf_addr_wrap": p, kind = "type"),
            &layout!(a = "pf_rule_addr": port, port_op),
            &layout!(pa = "pf_pooladdr": entries, ifname, kif),
            &layout!(p = "pf_pool": cur, key, counter, tblidx, proxy_port, opts),
            &layout!(r = "pf_rule": dst, skip, label, qname, tagname, entries, rpool,
                evaluations, os_fingerprint, rtableid, timeout, max_states, cuid,
                states_cur, return_icmp, uid, rule_flag, action, log, quick, natpass,
                keep_state, af, proto, kind = "type", flags, flagset, prio, set_prio,
                divert_addr = "divert", u_states_cur, u_states_tot),
            &layout!(io = "pfioc_rule": ticket, pool_ticket, nr, anchor, anchor_call, rule),
            &layout!(pp = "pfioc_pooladdr": ticket, af, anchor, addr),
            &layout!(n = "pfioc_natlook": rdaddr, sport, rdport, af, direction),
            &layout!(e = "pfioc_trans_e": anchor, ticket),
            &layout!(t = "pfioc_trans": array),
            &layout!(s = "pf_status": running, ifname),
            &layout!(rs = "pfioc_ruleset": path, name),
            &layout!(ioctls: DIOCADDRULE, DIOCGETSTATUS, DIOCGETSTATUSNV, DIOCNATLOOK,
                DIOCBEGINADDRS, DIOCADDADDR, DIOCXBEGIN, DIOCXCOMMIT, DIOCXROLLBACK,
                DIOCGETRULES, DIOCGETRULE, DIOCGETRULESETS, DIOCGETRULESET),
        ]
        .concat();
        check_layout("freebsd", &ours);
    }
}

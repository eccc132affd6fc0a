//! OpenBSD's pf ioctl ABI (sys/net/pfvar.h 1.543, 2025), the structures
//! ftp-proxy passes through /dev/pf, declared field by field. Plain data:
//! compiled on every target so the layout tests run on Linux too.

use std::mem::size_of;

pub const IFNAMSIZ: usize = 16;
pub const PATH_MAX: usize = 1024;
pub const PF_TABLE_NAME_SIZE: usize = 32;
pub const PF_RULE_LABEL_SIZE: usize = 64;
pub const PF_QNAME_SIZE: usize = 64;
pub const PF_TAG_NAME_SIZE: usize = 64;
const PFTM_MAX: usize = 20;
const PF_SKIP_COUNT: usize = 9;

pub const PF_IN: u8 = 1;
pub const PF_OUT: u8 = 2;
pub const PF_PASS: u8 = 0;
pub const PF_MATCH: u8 = 12;
pub const PF_OP_EQ: u8 = 2;
pub const PF_ADDR_ADDRMASK: u8 = 0;
pub const PF_ADDR_NONE: u8 = 7;
pub const PF_TRANS_RULESET: i32 = 0;
pub const PF_LOG: u8 = 0x01;
pub const PF_LOG_ALL: u8 = 0x02;
pub const PF_STATE_NORMAL: u8 = 1;
/// `prio` and `set_prio` left alone.
pub const PF_PRIO_NOTSET: u8 = 0xff;
/// `rule_flag`: a one-shot rule, gone from its ruleset after its first
/// match (pf.conf `once`; the state it made stays).
pub const PFRULE_ONCE: u32 = 0x0010_0000;
/// PF_ANCHOR_NAME_SIZE.
pub const PF_ANCHOR_NAME_SIZE: usize = 64;
pub const TH_SYN: u8 = 0x02;
pub const TH_ACK: u8 = 0x10;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 24;
pub const IPPROTO_TCP: u8 = 6;

/// `struct pf_addr`: 16 bytes, 4-aligned (a union with u_int32_t[4]).
#[repr(C, align(4))]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct PfAddr {
    pub addr8: [u8; 16],
}

/// `struct pf_addr_wrap` with its `v` union as address and mask (the
/// only form ftp-proxy uses) and its `p` union as one pointer-sized word.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PfAddrWrap {
    pub addr: PfAddr,
    pub mask: PfAddr,
    pub p: usize,
    pub kind: u8,
    pub iflags: u8,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PfRuleAddr {
    pub addr: PfAddrWrap,
    /// Network byte order.
    pub port: [u16; 2],
    pub neg: u8,
    pub port_op: u8,
    pub weight: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PfThreshold {
    pub limit: u32,
    pub seconds: u32,
    pub count: u32,
    pub last: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PfPool {
    pub addr: PfAddrWrap,
    /// `struct pf_poolhashkey`.
    pub key: PfAddr,
    pub counter: PfAddr,
    pub ifname: [u8; IFNAMSIZ],
    pub kif: usize,
    pub tblidx: i32,
    pub states: u64,
    pub curweight: i32,
    pub weight: u16,
    /// Host byte order.
    pub proxy_port: [u16; 2],
    pub port_op: u8,
    pub opts: u8,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PfRuleUid {
    pub id: [u32; 2],
    pub op: u8,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PfDivert {
    pub addr: PfAddr,
    pub port: u16,
    pub kind: u8,
}

/// `struct pf_rule`; pointers (kernel-side) as pointer-sized words.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PfRule {
    pub src: PfRuleAddr,
    pub dst: PfRuleAddr,
    pub skip: [usize; PF_SKIP_COUNT],
    pub label: [u8; PF_RULE_LABEL_SIZE],
    pub ifname: [u8; IFNAMSIZ],
    pub rcv_ifname: [u8; IFNAMSIZ],
    pub qname: [u8; PF_QNAME_SIZE],
    pub pqname: [u8; PF_QNAME_SIZE],
    pub tagname: [u8; PF_TAG_NAME_SIZE],
    pub match_tagname: [u8; PF_TAG_NAME_SIZE],
    pub overload_tblname: [u8; PF_TABLE_NAME_SIZE],
    pub entries: [usize; 2],
    pub nat: PfPool,
    pub rdr: PfPool,
    pub route: PfPool,
    pub pktrate: PfThreshold,
    pub evaluations: u64,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub kif: usize,
    pub rcv_kif: usize,
    pub anchor: usize,
    pub overload_tbl: usize,
    pub os_fingerprint: u32,
    pub rtableid: i32,
    pub onrdomain: i32,
    pub timeout: [u32; PFTM_MAX],
    pub states_cur: u32,
    pub states_tot: u32,
    pub max_states: u32,
    pub src_nodes: u32,
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
    pub return_icmp: u16,
    pub return_icmp6: u16,
    pub max_mss: u16,
    pub tag: u16,
    pub match_tag: u16,
    pub scrub_flags: u16,
    pub delay: u16,
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
    pub keep_state: u8,
    pub af: u8,
    pub proto: u8,
    pub kind: u16,
    pub code: u16,
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
    pub naf: u8,
    pub rcvifnot: u8,
    pub divert: PfDivert,
    pub exptime: i64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PfiocRule {
    pub action: u32,
    pub ticket: u32,
    pub nr: u32,
    pub anchor: [u8; PATH_MAX],
    pub anchor_call: [u8; PATH_MAX],
    pub rule: PfRule,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PfiocTransE {
    pub kind: i32,
    pub anchor: [u8; PATH_MAX],
    pub ticket: u32,
}

#[repr(C)]
#[derive(Debug)]
pub struct PfiocTrans {
    pub size: i32,
    pub esize: i32,
    pub array: *mut PfiocTransE,
}

/// `struct pf_status`: ftp-proxy reads only `running`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PfStatus {
    pub counters: [u64; 55],
    pub since: i64,
    pub running: u32,
    pub rest: [u32; 7],
    pub syncookies: [u8; 4],
    pub ifname: [u8; IFNAMSIZ],
    pub pf_chksum: [u8; 16],
}

/// `struct pfioc_ruleset`: the child anchors of `path`, one by one.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PfiocRuleset {
    pub nr: u32,
    pub path: [u8; PATH_MAX],
    pub name: [u8; PF_ANCHOR_NAME_SIZE],
}

zeroed_default!(PfRule, PfiocRule, PfiocTransE, PfStatus, PfiocRuleset);

/// `_IOWR(group, num, T)` of sys/ioccom.h (the same on FreeBSD).
pub const fn iowr(group: u8, num: u8, len: usize) -> u64 {
    const IOC_INOUT: u64 = 0x8000_0000 | 0x4000_0000;
    IOC_INOUT | (((len as u64) & 0x1fff) << 16) | ((group as u64) << 8) | num as u64
}

pub const DIOCADDRULE: u64 = iowr(b'D', 4, size_of::<PfiocRule>());
pub const DIOCGETSTATUS: u64 = iowr(b'D', 21, size_of::<PfStatus>());
pub const DIOCXBEGIN: u64 = iowr(b'D', 81, size_of::<PfiocTrans>());
pub const DIOCXCOMMIT: u64 = iowr(b'D', 82, size_of::<PfiocTrans>());
pub const DIOCXROLLBACK: u64 = iowr(b'D', 83, size_of::<PfiocTrans>());
pub const DIOCGETRULESETS: u64 = iowr(b'D', 58, size_of::<PfiocRuleset>());
pub const DIOCGETRULESET: u64 = iowr(b'D', 59, size_of::<PfiocRuleset>());

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    //! Every size, offset and ioctl number clang printed for the real
    //! pfvar.h 1.543 (bsd/abi/pf-layout.txt), against these declarations.
    use super::*;
    use crate::filter::pf::{check_layout, layout};

    #[test]
    fn layout_matches_the_real_pfvar_h() {
        let (w, a, p, r) = (
            PfAddrWrap::default(),
            PfRuleAddr::default(),
            PfPool::default(),
            PfRule::default(),
        );
        let (io, e, s, rs) = (
            PfiocRule::default(),
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
                PfiocRuleset = "pfioc_ruleset")[..],
            &layout!(w = "pf_addr_wrap": p, kind = "type"),
            &layout!(a = "pf_rule_addr": port, port_op),
            &layout!(p = "pf_pool": key, counter, tblidx, proxy_port, opts, kif, states),
            &layout!(r = "pf_rule": dst, skip, label, qname, tagname, entries, nat, rdr,
                route, pktrate, evaluations, kif, os_fingerprint, rtableid, onrdomain,
                timeout, max_states, cuid, return_icmp, uid, rule_flag, action, log,
                quick, keep_state, af, proto, kind = "type", flags, flagset, prio,
                set_prio, naf, divert, exptime),
            &layout!(io = "pfioc_rule": ticket, anchor, anchor_call, rule),
            &layout!(e = "pfioc_trans_e": anchor, ticket),
            &layout!(t = "pfioc_trans": array),
            &layout!(s = "pf_status": since, running, ifname),
            &layout!(rs = "pfioc_ruleset": path, name),
            &layout!(ioctls: DIOCADDRULE, DIOCGETSTATUS, DIOCXBEGIN, DIOCXCOMMIT,
                DIOCXROLLBACK, DIOCGETRULESETS, DIOCGETRULESET),
        ]
        .concat();
        check_layout("openbsd", &ours);
    }
}

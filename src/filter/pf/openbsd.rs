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

zeroed_default!(PfRule, PfiocRule, PfiocTransE, PfStatus);

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

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    //! Sizes and offsets printed by gcc -m64 for the structure definitions
    //! of pfvar.h 1.543 (amd64 and arm64 share them: LP64).
    use super::*;
    use crate::filter::pf::offset;

    #[test]
    fn sizes_match_pfvar_h() {
        assert_eq!(size_of::<PfAddr>(), 16);
        assert_eq!(size_of::<PfAddrWrap>(), 48);
        assert_eq!(size_of::<PfRuleAddr>(), 56);
        assert_eq!(size_of::<PfPool>(), 136);
        assert_eq!(size_of::<PfRule>(), 1344);
        assert_eq!(size_of::<PfiocRule>(), 3408);
        assert_eq!(size_of::<PfiocTransE>(), 1032);
        assert_eq!(size_of::<PfiocTrans>(), 16);
        assert_eq!(size_of::<PfStatus>(), 520);
    }

    #[test]
    fn offsets_match_pfvar_h() {
        let w = PfAddrWrap::default();
        assert_eq!(offset(&w, &w.p), 32);
        assert_eq!(offset(&w, &w.kind), 40);
        let a = PfRuleAddr::default();
        assert_eq!(offset(&a, &a.port), 48);
        assert_eq!(offset(&a, &a.port_op), 53);
        let p = PfPool::default();
        assert_eq!(offset(&p, &p.key), 48);
        assert_eq!(offset(&p, &p.counter), 64);
        assert_eq!(offset(&p, &p.kif), 96);
        assert_eq!(offset(&p, &p.states), 112);
        assert_eq!(offset(&p, &p.proxy_port), 126);
        assert_eq!(offset(&p, &p.opts), 131);
        let r = PfRule::default();
        for (got, want, name) in [
            (offset(&r, &r.dst), 56, "dst"),
            (offset(&r, &r.skip), 112, "skip"),
            (offset(&r, &r.label), 184, "label"),
            (offset(&r, &r.qname), 280, "qname"),
            (offset(&r, &r.tagname), 408, "tagname"),
            (offset(&r, &r.entries), 568, "entries"),
            (offset(&r, &r.nat), 584, "nat"),
            (offset(&r, &r.rdr), 720, "rdr"),
            (offset(&r, &r.route), 856, "route"),
            (offset(&r, &r.pktrate), 992, "pktrate"),
            (offset(&r, &r.evaluations), 1008, "evaluations"),
            (offset(&r, &r.kif), 1048, "kif"),
            (offset(&r, &r.os_fingerprint), 1080, "os_fingerprint"),
            (offset(&r, &r.rtableid), 1084, "rtableid"),
            (offset(&r, &r.onrdomain), 1088, "onrdomain"),
            (offset(&r, &r.timeout), 1092, "timeout"),
            (offset(&r, &r.max_states), 1180, "max_states"),
            (offset(&r, &r.cuid), 1228, "cuid"),
            (offset(&r, &r.return_icmp), 1236, "return_icmp"),
            (offset(&r, &r.uid), 1252, "uid"),
            (offset(&r, &r.rule_flag), 1276, "rule_flag"),
            (offset(&r, &r.action), 1280, "action"),
            (offset(&r, &r.log), 1282, "log"),
            (offset(&r, &r.quick), 1284, "quick"),
            (offset(&r, &r.keep_state), 1287, "keep_state"),
            (offset(&r, &r.af), 1288, "af"),
            (offset(&r, &r.proto), 1289, "proto"),
            (offset(&r, &r.kind), 1290, "type"),
            (offset(&r, &r.flags), 1294, "flags"),
            (offset(&r, &r.flagset), 1295, "flagset"),
            (offset(&r, &r.prio), 1305, "prio"),
            (offset(&r, &r.set_prio), 1306, "set_prio"),
            (offset(&r, &r.naf), 1308, "naf"),
            (offset(&r, &r.divert), 1312, "divert"),
            (offset(&r, &r.exptime), 1336, "exptime"),
        ] {
            assert_eq!(got, want, "pf_rule.{name}");
        }
        let io = PfiocRule::default();
        assert_eq!(offset(&io, &io.anchor), 12);
        assert_eq!(offset(&io, &io.anchor_call), 1036);
        assert_eq!(offset(&io, &io.rule), 2064);
        let e = PfiocTransE::default();
        assert_eq!(offset(&e, &e.ticket), 1028);
        let s = PfStatus::default();
        assert_eq!(offset(&s, &s.since), 440);
        assert_eq!(offset(&s, &s.running), 448);
    }

    #[test]
    fn ioctl_numbers() {
        // _IOWR('D', 4, struct pfioc_rule) with sizeof 3408 (0xd50).
        assert_eq!(DIOCADDRULE, 0xcd50_4404);
        assert_eq!(DIOCXBEGIN, 0xc010_4451);
        assert_eq!(DIOCXCOMMIT, 0xc010_4452);
        assert_eq!(DIOCGETSTATUS, 0xc208_4415);
    }
}

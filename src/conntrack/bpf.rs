//! The socket filter that keeps conntrack events of other connections
//! out of the proxy: the kernel runs it on each message before queueing
//! it, so a router forwarding other traffic does not wake the proxy for
//! it. Classic BPF, with the kernel's netlink-attribute helpers.
//!
//! With `-T` (a mark on exactly the proxy's data connections) it passes
//! messages whose CTA_MARK is the tag. Without, it passes TCP whose
//! original destination port is in the proxy-port range (`-E`, by default
//! 49152-65535);
//! other connections to such ports still wake the proxy, which then
//! finds no mapping of theirs and ignores them.
//!
//! Of those, it passes only what the proxy acts on: new connections,
//! destroyed ones, answers with counters, and updates to TIME_WAIT or
//! CLOSE. The other state changes (SYN_RECV, ESTABLISHED, FIN_WAIT, …)
//! would wake the proxy four or five times per data connection for
//! nothing.

use super::event::*;
use crate::ports::Range;

const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_H: u16 = 0x08;
const BPF_B: u16 = 0x10;
const BPF_IMM: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_IND: u16 = 0x40;
const BPF_MEM: u16 = 0x60;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;
const BPF_TAX: u16 = 0x00;
const SKF_AD_OFF: i32 = -0x1000;
const SKF_AD_NLATTR: i32 = 12;
const SKF_AD_NLATTR_NEST: i32 = 16;
/// Where a ctnetlink message's attributes start: nlmsghdr, nfgenmsg.
const ATTRS: u32 = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const fn op(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

const NLATTR: u32 = (SKF_AD_OFF + SKF_AD_NLATTR) as u32;
const NLATTR_NEST: u32 = (SKF_AD_OFF + SKF_AD_NLATTR_NEST) as u32;

pub type Program = heapless::Vec<Insn, 64>;

/// The filter; the last two instructions accept and reject, and every
/// jump lands on one of them or on the next instruction.
pub fn program(mark: Option<u32>, ports: Range) -> Program {
    let mut p = Program::new();
    let ld = BPF_LD | BPF_W | BPF_ABS;
    let mut push = |i: Insn| {
        let _ = p.push(i);
    };
    // Each `jeq 0` below: attribute missing, reject. Offsets are patched
    // at the end, once the accept/reject positions are known.
    const REJECT_IF_ZERO: Insn = jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0xff, 0);
    push(op(BPF_LD | BPF_IMM, ATTRS));
    match mark {
        Some(m) => {
            push(op(BPF_LDX | BPF_IMM, CTA_MARK.into()));
            push(op(ld, NLATTR));
            push(REJECT_IF_ZERO);
            push(op(BPF_MISC | BPF_TAX, 0));
            push(op(BPF_LD | BPF_W | BPF_IND, 4));
            push(jump(BPF_JMP | BPF_JEQ | BPF_K, m, 0, 0xff));
        }
        None => {
            push(op(BPF_LDX | BPF_IMM, CTA_TUPLE_ORIG.into()));
            push(op(ld, NLATTR));
            push(REJECT_IF_ZERO);
            push(op(BPF_LDX | BPF_IMM, CTA_TUPLE_PROTO.into()));
            push(op(ld, NLATTR_NEST));
            push(REJECT_IF_ZERO);
            push(op(BPF_ST, 0));
            push(op(BPF_LDX | BPF_IMM, CTA_PROTO_NUM.into()));
            push(op(ld, NLATTR_NEST));
            push(REJECT_IF_ZERO);
            push(op(BPF_MISC | BPF_TAX, 0));
            push(op(BPF_LD | BPF_B | BPF_IND, 4));
            push(jump(BPF_JMP | BPF_JEQ | BPF_K, 6, 0, 0xff));
            push(op(BPF_LD | BPF_MEM, 0));
            push(op(BPF_LDX | BPF_IMM, CTA_PROTO_DST_PORT.into()));
            push(op(ld, NLATTR_NEST));
            push(REJECT_IF_ZERO);
            push(op(BPF_MISC | BPF_TAX, 0));
            push(op(BPF_LD | BPF_H | BPF_IND, 4));
            push(jump(BPF_JMP | BPF_JGE | BPF_K, ports.low().into(), 0, 0xff));
            push(jump(
                BPF_JMP | BPF_JGT | BPF_K,
                ports.high().into(),
                0xff,
                0,
            ));
        }
    }
    // Which message: header fields in the host's order, as `ldh` reads
    // them (network order).
    let as_loaded = |v: u16| u32::from(u16::from_be_bytes(v.to_ne_bytes()));
    let delete = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
    push(op(BPF_LD | BPF_H | BPF_ABS, 4));
    push(jump(BPF_JMP | BPF_JEQ | BPF_K, as_loaded(delete), 0xfe, 0));
    push(op(BPF_LD | BPF_H | BPF_ABS, 6));
    push(jump(
        BPF_JMP | BPF_JSET | BPF_K,
        as_loaded(NLM_F_CREATE),
        0xfe,
        0,
    ));
    // An update with counters is the answer to the proxy's GET.
    push(op(BPF_LD | BPF_IMM, ATTRS));
    push(op(BPF_LDX | BPF_IMM, CTA_COUNTERS_ORIG.into()));
    push(op(ld, NLATTR));
    push(jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0xfe));
    // Else an update: only the end states.
    push(op(BPF_LD | BPF_IMM, ATTRS));
    push(op(BPF_LDX | BPF_IMM, CTA_PROTOINFO.into()));
    push(op(ld, NLATTR));
    push(REJECT_IF_ZERO);
    push(op(BPF_LDX | BPF_IMM, CTA_PROTOINFO_TCP.into()));
    push(op(ld, NLATTR_NEST));
    push(REJECT_IF_ZERO);
    push(op(BPF_LDX | BPF_IMM, CTA_PROTOINFO_TCP_STATE.into()));
    push(op(ld, NLATTR_NEST));
    push(REJECT_IF_ZERO);
    push(op(BPF_MISC | BPF_TAX, 0));
    push(op(BPF_LD | BPF_B | BPF_IND, 4));
    push(jump(
        BPF_JMP | BPF_JGE | BPF_K,
        TCP_TIME_WAIT.into(),
        0xfe,
        0xff,
    ));
    push(op(BPF_RET | BPF_K, 0xffff_ffff));
    push(op(BPF_RET | BPF_K, 0));
    // 0xfe: to accept, 0xff: to reject.
    let (accept, reject) = (p.len() - 2, p.len() - 1);
    for (at, i) in p.iter_mut().enumerate() {
        for j in [&mut i.jt, &mut i.jf] {
            *j = match *j {
                0xfe => (accept - at - 1) as u8,
                0xff => (reject - at - 1) as u8,
                n => n,
            };
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nla_find(b: &[u8], from: usize, end: usize, kind: u32) -> u32 {
        let mut at = from;
        while at + 4 <= end {
            let len = u16::from_ne_bytes([b[at], b[at + 1]]) as usize;
            let k = u16::from_ne_bytes([b[at + 2], b[at + 3]]) & 0x3fff;
            if len < 4 || at + len > end {
                return 0;
            }
            if u32::from(k) == kind {
                return at as u32;
            }
            at += (len + 3) & !3;
        }
        0
    }

    /// The kernel's semantics, for the instructions `program` uses.
    fn run(p: &[Insn], pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut m0, mut pc) = (0u32, 0u32, 0u32, 0usize);
        let load = |off: usize, n: usize| -> Option<u32> {
            let b = pkt.get(off..off + n)?;
            Some(b.iter().fold(0u32, |v, &c| (v << 8) | u32::from(c)))
        };
        loop {
            let i = p[pc];
            pc += 1;
            match i.code {
                c if c == BPF_LD | BPF_IMM => a = i.k,
                c if c == BPF_LDX | BPF_IMM => x = i.k,
                c if c == BPF_LD | BPF_W | BPF_ABS && i.k == NLATTR => {
                    a = nla_find(pkt, a as usize, pkt.len(), x)
                }
                c if c == BPF_LD | BPF_W | BPF_ABS && i.k == NLATTR_NEST => {
                    let at = a as usize;
                    a = match pkt.get(at..at + 2) {
                        Some(l)
                            if at + (u16::from_ne_bytes([l[0], l[1]]) as usize) <= pkt.len() =>
                        {
                            let len = u16::from_ne_bytes([l[0], l[1]]) as usize;
                            nla_find(pkt, at + 4, at + len, x)
                        }
                        _ => 0,
                    };
                }
                c if c == BPF_ST => m0 = a,
                c if c == BPF_LD | BPF_MEM => a = m0,
                c if c == BPF_MISC | BPF_TAX => x = a,
                c if c == BPF_LD | BPF_W | BPF_IND => match load((x + i.k) as usize, 4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == BPF_LD | BPF_H | BPF_IND => match load((x + i.k) as usize, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == BPF_LD | BPF_B | BPF_IND => match load((x + i.k) as usize, 1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == BPF_JMP | BPF_JEQ | BPF_K => {
                    pc += usize::from(if a == i.k { i.jt } else { i.jf })
                }
                c if c == BPF_JMP | BPF_JGE | BPF_K => {
                    pc += usize::from(if a >= i.k { i.jt } else { i.jf })
                }
                c if c == BPF_JMP | BPF_JGT | BPF_K => {
                    pc += usize::from(if a > i.k { i.jt } else { i.jf })
                }
                c if c == BPF_JMP | BPF_JSET | BPF_K => {
                    pc += usize::from(if a & i.k != 0 { i.jt } else { i.jf })
                }
                c if c == BPF_LD | BPF_H | BPF_ABS => match load(i.k as usize, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == BPF_RET | BPF_K => return i.k,
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn passes_the_proxy_port_range_or_the_mark_and_nothing_else() {
        let sample = super::super::event::tests::sample;
        let by_port = program(None, Range::default());
        assert_ne!(run(&by_port, &sample(IPCTNL_MSG_CT_DELETE, 0, 49152)), 0);
        assert_ne!(run(&by_port, &sample(IPCTNL_MSG_CT_NEW, 0x400, 65535)), 0);
        assert_eq!(run(&by_port, &sample(IPCTNL_MSG_CT_DELETE, 0, 49151)), 0);
        assert_eq!(run(&by_port, &sample(IPCTNL_MSG_CT_DELETE, 0, 80)), 0);
        assert_ne!(
            run(
                &program(Some(7), Range::default()),
                &sample(IPCTNL_MSG_CT_DELETE, 0, 80)
            ),
            0
        );
        assert_eq!(
            run(
                &program(Some(8), Range::default()),
                &sample(IPCTNL_MSG_CT_DELETE, 0, 50000)
            ),
            0
        );
        // A range of its own: both ends in, their neighbours out.
        let narrow = program(None, Range::new(50000, 50099).unwrap());
        assert!(narrow.len() < Program::new().capacity(), "room to spare");
        for (port, pass) in [(49999, false), (50000, true), (50099, true), (50100, false)] {
            let got = run(&narrow, &sample(IPCTNL_MSG_CT_DELETE, 0, port));
            assert_eq!(got != 0, pass, "port {port}");
        }
        // Not TCP: byte 6 of the protocol number changed to UDP.
        let mut udp = sample(IPCTNL_MSG_CT_DELETE, 0, 50000);
        let [l0, l1] = 5u16.to_ne_bytes();
        let [t0, t1] = CTA_PROTO_NUM.to_ne_bytes();
        let at = udp
            .windows(5)
            .position(|w| w == [l0, l1, t0, t1, 6])
            .unwrap();
        udp[at + 4] = 17;
        assert_eq!(run(&by_port, &udp), 0);
        // Updates: only the end states, and answers with counters.
        let with = super::super::event::tests::sample_with;
        const ESTABLISHED: u8 = 3;
        for (state, counters, pass) in [
            (ESTABLISHED, false, false),
            (4, false, false),
            (TCP_TIME_WAIT, false, true),
            (TCP_CLOSE, false, true),
            (ESTABLISHED, true, true),
        ] {
            for p in [&by_port, &program(Some(7), Range::default())] {
                let got = run(p, &with(IPCTNL_MSG_CT_NEW, 0, 50000, state, counters));
                assert_eq!(
                    got != 0,
                    pass,
                    "update in state {state}, counters {counters}"
                );
            }
        }
        // New and destroyed connections pass whatever their state.
        assert_ne!(
            run(&by_port, &with(IPCTNL_MSG_CT_NEW, 0x400, 50000, 1, false)),
            0
        );
        assert_ne!(
            run(
                &by_port,
                &with(IPCTNL_MSG_CT_DELETE, 0, 50000, ESTABLISHED, false)
            ),
            0
        );
        // Cut short: rejected, never read past the end.
        let m = sample(IPCTNL_MSG_CT_DELETE, 0, 50000);
        for n in 20..m.len() {
            let _ = run(&by_port, &m[..n]);
        }
    }
}

//! The pf rules of one data connection on FreeBSD, as its ftp-proxy(8)
//! writes them: NAT and RDR live in rulesets of their own, and neither
//! passes traffic, so two filter rules go with them:
//!
//! ```text
//! rdr inet proto tcp from $src to $dst port $dport -> $to port $to_port
//! nat inet proto tcp from $src to $to port $to_port -> $nat_src [port 20]
//! pass in  [log] quick inet proto tcp from $src to $to port $to_port \
//!     flags S/SA keep state (max 1) [tag] [queue]
//! pass out [log] quick inet proto tcp from $nat_src to $to port $to_port \
//!     flags S/SA keep state (max 1) [tag] [queue]
//! ```

use super::freebsd::*;
use super::openbsd::{IPPROTO_TCP, PF_MATCH, PF_OP_EQ, PF_STATE_NORMAL, TH_ACK, TH_SYN};
use super::rules::{match_fields, pass_fields, RuleOpts, NAT_PORT_HIGH, NAT_PORT_LOW};
use crate::filter::DataMap;
use std::net::IpAddr;

/// One rule and where it goes.
#[derive(Clone, Copy, Debug)]
pub struct FbRule {
    /// PF_RULESET_RDR, _NAT or _FILTER.
    pub ruleset: i32,
    pub rule: PfRule,
    /// The address of its pool (rdr-to / nat-to), if it has one.
    pub pool: Option<IpAddr>,
}

impl Default for FbRule {
    fn default() -> Self {
        FbRule {
            ruleset: PF_RULESET_FILTER,
            rule: PfRule::default(),
            pool: None,
        }
    }
}

fn translation(r: &mut FbRule, ruleset: i32, action: u8, m: (IpAddr, IpAddr, u16)) {
    *r = FbRule::default();
    r.ruleset = ruleset;
    let rule = &mut r.rule;
    match_fields!(rule, m.0, m.1, m.2, AF_INET, AF_INET6);
    rule.action = action;
}

fn filter(r: &mut FbRule, dir: u8, o: &RuleOpts, m: (IpAddr, IpAddr, u16)) {
    *r = FbRule::default();
    let rule = &mut r.rule;
    match_fields!(rule, m.0, m.1, m.2, AF_INET, AF_INET6);
    pass_fields!(rule, o, PF_PASS, PF_MATCH);
    rule.direction = dir;
}

/// Fills `out` with the rdr, nat and two filter rules of mapping `d`.
pub fn mapping_rules(d: &DataMap, o: &RuleOpts, out: &mut [FbRule; 4]) {
    let [rdr, nat, pass_in, pass_out] = out;
    translation(rdr, PF_RULESET_RDR, PF_RDR, (d.src, d.dst, d.dport));
    rdr.pool = Some(d.to);
    rdr.rule.rpool.proxy_port[0] = d.to_port;

    translation(nat, PF_RULESET_NAT, PF_NAT, (d.src, d.to, d.to_port));
    nat.pool = Some(d.nat_src);
    nat.rule.rpool.proxy_port = match d.nat_sport {
        Some(p) => [p, p],
        None => [NAT_PORT_LOW, NAT_PORT_HIGH],
    };

    // Filter rules see the packet after rdr (in) and after nat (out).
    filter(pass_in, PF_IN, o, (d.src, d.to, d.to_port));
    filter(pass_out, PF_OUT, o, (d.nat_src, d.to, d.to_port));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn v4(w: &crate::filter::pf::openbsd::PfAddrWrap) -> IpAddr {
        let a: [u8; 4] = w.addr.addr8[..4].try_into().unwrap();
        IpAddr::from(a)
    }

    #[test]
    fn passive_set_as_freebsd_ftp_proxy_writes_it() {
        let d = DataMap::passive(
            ip("198.18.1.2"),
            ip("198.19.2.2"),
            50123,
            ip("198.19.2.2"),
            30000,
            ip("198.19.2.1"),
            3,
        );
        let mut out = [FbRule::default(); 4];
        mapping_rules(&d, &RuleOpts::default(), &mut out);
        let [rdr, nat, pin, pout] = &out;
        assert_eq!((rdr.ruleset, rdr.rule.action), (PF_RULESET_RDR, PF_RDR));
        assert_eq!(rdr.pool, Some(ip("198.19.2.2")));
        assert_eq!(rdr.rule.rpool.proxy_port[0], 30000);
        assert_eq!(u16::from_be(rdr.rule.dst.port[0]), 50123);
        assert_eq!((nat.ruleset, nat.rule.action), (PF_RULESET_NAT, PF_NAT));
        assert_eq!(nat.pool, Some(ip("198.19.2.1")));
        assert_eq!(nat.rule.rpool.proxy_port, [NAT_PORT_LOW, NAT_PORT_HIGH]);
        assert_eq!(v4(&nat.rule.dst.addr), ip("198.19.2.2"));
        for (r, dir, src) in [(pin, PF_IN, "198.18.1.2"), (pout, PF_OUT, "198.19.2.1")] {
            assert_eq!(r.ruleset, PF_RULESET_FILTER);
            assert_eq!(
                (r.rule.action, r.rule.quick, r.rule.direction),
                (PF_PASS, 1, dir)
            );
            assert_eq!((r.rule.keep_state, r.rule.max_states), (PF_STATE_NORMAL, 1));
            assert_eq!((r.rule.flags, r.rule.flagset), (TH_SYN, TH_SYN | TH_ACK));
            assert_eq!(v4(&r.rule.src.addr), ip(src));
            assert_eq!(v4(&r.rule.dst.addr), ip("198.19.2.2"));
            assert_eq!(u16::from_be(r.rule.dst.port[0]), 30000);
            assert_eq!(r.pool, None);
        }
        for r in &out {
            assert_eq!((r.rule.af, r.rule.proto, r.rule.rtableid), (AF_INET, 6, -1));
            // FreeBSD's pf.h has no PFRULE_ONCE: no flag it would misread;
            // the proxy flushes the anchor once the state exists instead.
            assert_eq!(r.rule.rule_flag, 0);
        }
    }

    #[test]
    fn active_set_with_port20_and_ipv6() {
        let d = DataMap::active(
            ip("2001:db8:2::2"),
            ip("2001:db8:2::1"),
            60000,
            ip("2001:db8:1::2"),
            40000,
            ip("2001:db8:2::2"),
            true,
            4,
        );
        let o = RuleOpts {
            log: 1,
            tag: Some("FTP"),
            queue: None,
        };
        let mut out = [FbRule::default(); 4];
        mapping_rules(&d, &o, &mut out);
        assert!(out.iter().all(|r| r.rule.af == AF_INET6));
        assert_eq!(out[0].pool, Some(ip("2001:db8:1::2")));
        assert_eq!(out[1].pool, Some(ip("2001:db8:2::2")));
        assert_eq!(out[1].rule.rpool.proxy_port, [20, 20]);
        // With a tag the filter rules only match and tag.
        assert_eq!(
            (out[2].rule.action, out[2].rule.quick, out[2].rule.log),
            (PF_MATCH, 0, 1)
        );
        assert_eq!(&out[3].rule.tagname[..4], b"FTP\0");
    }
}

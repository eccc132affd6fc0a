/*
 * Sizes, offsets and ioctl numbers of the pf ABI ftp-proxy uses, as the
 * target's compiler lays out the real <net/pfvar.h>. Built with clang for a
 * BSD target and never run: each value is a global constant that probe.sh
 * reads back from the assembly. See bsd/abi/README.md.
 */
#include <stddef.h>
#include <net/pfvar.h>

#define SIZE(s)		const unsigned long size__##s = sizeof(struct s);
#define OFF(s, f)	const unsigned long off__##s##__##f = offsetof(struct s, f);
#define IOC(n)		const unsigned long ioc__##n = n;

SIZE(pf_addr) SIZE(pf_addr_wrap) SIZE(pf_rule_addr) SIZE(pf_pool)
SIZE(pf_rule) SIZE(pfioc_rule) SIZE(pfioc_trans_e) SIZE(pfioc_trans)
SIZE(pf_status)
OFF(pf_addr_wrap, p) OFF(pf_addr_wrap, type)
OFF(pf_rule_addr, port) OFF(pf_rule_addr, port_op)
OFF(pf_pool, key) OFF(pf_pool, counter) OFF(pf_pool, tblidx)
OFF(pf_pool, proxy_port) OFF(pf_pool, opts)
OFF(pf_rule, dst) OFF(pf_rule, skip) OFF(pf_rule, label) OFF(pf_rule, qname)
OFF(pf_rule, tagname) OFF(pf_rule, entries) OFF(pf_rule, evaluations)
OFF(pf_rule, os_fingerprint) OFF(pf_rule, rtableid) OFF(pf_rule, timeout)
OFF(pf_rule, max_states) OFF(pf_rule, cuid) OFF(pf_rule, return_icmp)
OFF(pf_rule, uid) OFF(pf_rule, rule_flag) OFF(pf_rule, action)
OFF(pf_rule, log) OFF(pf_rule, quick) OFF(pf_rule, keep_state)
OFF(pf_rule, af) OFF(pf_rule, proto) OFF(pf_rule, type) OFF(pf_rule, flags)
OFF(pf_rule, flagset) OFF(pf_rule, prio) OFF(pf_rule, set_prio)
OFF(pf_rule, divert)
OFF(pfioc_rule, ticket) OFF(pfioc_rule, anchor) OFF(pfioc_rule, anchor_call)
OFF(pfioc_rule, rule)
OFF(pfioc_trans_e, anchor) OFF(pfioc_trans_e, ticket)
OFF(pfioc_trans, array)
OFF(pf_status, running) OFF(pf_status, ifname)
IOC(DIOCADDRULE) IOC(DIOCGETSTATUS) IOC(DIOCXBEGIN) IOC(DIOCXCOMMIT)
IOC(DIOCXROLLBACK)
SIZE(pfioc_ruleset) OFF(pfioc_ruleset, path) OFF(pfioc_ruleset, name)
IOC(DIOCGETRULESETS) IOC(DIOCGETRULESET)

#if defined(__OpenBSD__)
OFF(pf_pool, kif) OFF(pf_pool, states)
OFF(pf_rule, nat) OFF(pf_rule, rdr) OFF(pf_rule, route) OFF(pf_rule, pktrate)
OFF(pf_rule, kif) OFF(pf_rule, onrdomain) OFF(pf_rule, naf)
OFF(pf_rule, exptime)
OFF(pf_status, since)
#elif defined(__FreeBSD__)
SIZE(pf_pooladdr) SIZE(pfioc_pooladdr) SIZE(pfioc_natlook)
OFF(pf_pooladdr, entries) OFF(pf_pooladdr, ifname) OFF(pf_pooladdr, kif)
OFF(pf_pool, cur)
OFF(pf_rule, rpool) OFF(pf_rule, states_cur) OFF(pf_rule, natpass)
OFF(pf_rule, u_states_cur) OFF(pf_rule, u_states_tot)
OFF(pfioc_rule, pool_ticket) OFF(pfioc_rule, nr)
OFF(pfioc_pooladdr, ticket) OFF(pfioc_pooladdr, af) OFF(pfioc_pooladdr, anchor)
OFF(pfioc_pooladdr, addr)
OFF(pfioc_natlook, rdaddr) OFF(pfioc_natlook, sport) OFF(pfioc_natlook, rdport)
OFF(pfioc_natlook, af) OFF(pfioc_natlook, direction)
IOC(DIOCNATLOOK) IOC(DIOCBEGINADDRS) IOC(DIOCADDADDR) IOC(DIOCGETSTATUSNV)
IOC(DIOCGETRULES) IOC(DIOCGETRULE)
#endif

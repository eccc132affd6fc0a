#!/usr/bin/env python3
"""Where a listing's time goes, hop by hop (bench/hops.sh).

hops.py TEXT...   each TEXT is `tcpdump -nn -tt -v -r` of one capture in the
                  router, named CONTENDER-MODE.txt

A listing is cut into the moments the router saw: the client's PASV/PORT
arriving, leaving towards the server, the server's reply arriving and
leaving towards the client, the data connection's SYN both ways, and so
on up to the 226. Each hop's median over all listings is printed for each
contender side by side, with the difference. Hops between a packet
arriving and the same message leaving are the router's (the kernel, or
the proxy process); the others are the client's or the server's.
"""
import collections
import re
import statistics
import sys

CLIENT = "198.18.1.2"
WORDS = ("PORT", "PASV", "LIST", "TYPE")
CODES = ("200", "227", "125", "150", "226")


def packets(path):
    out, cur = [], None
    for line in open(path, errors="replace"):
        m = re.match(r"^(\d+\.\d+) \S+\s+(In|Out) ", line)
        if m:
            cur = {"t": float(m[1]), "dir": m[2], "hdr": "", "pay": ""}
            out.append(cur)
            continue
        if cur is None:
            continue
        if line.startswith("    ") and not cur["hdr"]:
            cur["hdr"] = line.strip()
        elif line.startswith("\t") and not cur["pay"]:
            cur["pay"] = line.strip()
    return out


def event(p):
    m = re.match(r"(\S+) > (\S+): Flags \[([^\]]*)\]", p["hdr"])
    if not m:
        return None
    src, dst, flags = m.groups()
    # Which side of the router: the client's network or the server's.
    side = "client" if src.startswith(CLIENT + ".") or dst.startswith(CLIENT + ".") else "server"
    where = f"{side} {p['dir'].lower()}"
    control = src.endswith(".21") or dst.rstrip(":").endswith(".21")
    if p["pay"]:
        w = p["pay"].split()[0]
        if w in WORDS or w[:3] in CODES:
            return f"{w[:4]} {where}"
        return None
    if not control:
        if flags == "S":
            return f"data SYN {where}"
        if flags == "S.":
            return f"data SYN-ACK {where}"
        if "F" in flags:
            return f"data FIN {where}"
    return None


def listings(path, start):
    seq = [(p["t"], e) for p in packets(path) if (e := event(p))]
    ops, cur = [], None
    for t, e in seq:
        if e == start:
            cur = []
            ops.append(cur)
        if cur is not None:
            cur.append((t, e))
    ops = ops[5:-2]  # the first and last listings of a run are not typical
    firsts = []
    for o in ops:
        first = {}
        for t, e in o:
            first.setdefault(e, t)
        firsts.append(first)
    return firsts


def main(paths):
    by_mode = collections.defaultdict(dict)
    for p in paths:
        name = p.rsplit("/", 1)[-1].removesuffix(".txt")
        contender, mode = name.rsplit("-", 1)
        by_mode[mode][contender] = p
    for mode, files in sorted(by_mode.items()):
        start = f"{mode.upper()} client in"
        data = {c: listings(f, start) for c, f in files.items()}
        contenders = sorted(data, key=lambda c: c != "helper")
        # The hops: the most common order of moments among all listings.
        orders = collections.Counter(tuple(f) for c in data.values() for f in c)
        order = orders.most_common(1)[0][0]
        print(f"**{mode.upper()} + LIST**, median µs per hop over the listings that "
              "show every moment in this order:")
        print()
        head = " | ".join(contenders)
        print(f"| hop | {head} | difference |")
        print("|---|" + "---:|" * (len(contenders) + 1))
        totals = {}
        for c in contenders:
            full = [f for f in data[c] if all(e in f for e in order)]
            totals[c] = (len(full), statistics.median(f[order[-1]] - f[order[0]] for f in full) * 1e6)
        for a, b in zip(order, order[1:]):
            cells = []
            for c in contenders:
                full = [f for f in data[c] if all(e in f for e in order)]
                cells.append(statistics.median(f[b] - f[a] for f in full) * 1e6)
            diff = cells[-1] - cells[0]
            print(f"| {a} → {b} | " + " | ".join(f"{v:.0f}" for v in cells) + f" | {diff:+.0f} |")
        cells = [totals[c][1] for c in contenders]
        print(f"| **first → last** | " + " | ".join(f"**{v:.0f}**" for v in cells)
              + f" | **{cells[-1] - cells[0]:+.0f}** |")
        print()
        print("Listings used: " + ", ".join(f"{c} {totals[c][0]} of {len(data[c])}" for c in contenders))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])

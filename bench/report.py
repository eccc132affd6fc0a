#!/usr/bin/env python3
"""bench/run.sh's markdown, from what its phases wrote (see run.sh)."""
import json
import statistics
import sys

(bulk_tsv, ctl_tsv, sys_tsv, detail, rss0, ipc, allocs, load, date, host,
 cpus, rounds, steal) = sys.argv[1:14]
CONTENDERS = ["direct", "helper", "mod_proxy", "relay", "ftp-proxy"]
failed = []


def med_range(xs, fmt):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "failed"
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


print(f"Benchmark {date} on {host} ({cpus} CPUs), `bash bench/run.sh`: one lab, one run;")
print("python3 ftplib client. Ratios are ftp-proxy ÷ peer: above 1 is better for rates.\n")

# ---- bulk ----
bulk = {}
for line in open(bulk_tsv):
    mode, js = line.rstrip("\n").split("\t", 1)
    bulk[mode] = json.loads(js)
if bulk:
    print("Bulk, vsftpd, each contender once (best of 3 transfers):\n")
    modes = [m for m in CONTENDERS if m in bulk]
    print("| MB/s | " + " | ".join(modes) + " | ÷ helper |")
    print("|---|" + "---:|" * (len(modes) + 1))
    for label, key in [("1 GiB passive download", "down_mbs"), ("1 GiB active upload", "up_mbs")]:
        v = {m: bulk[m].get(key) for m in modes}
        cells = ["failed" if v[m] is None else f"{v[m]:.0f}" for m in modes]
        r = v["ftp-proxy"] / v["helper"] if v.get("ftp-proxy") and v.get("helper") else None
        print(f"| {label} | " + " | ".join(cells) + f" | {'–' if r is None else f'{r:.2f}'} |")
    for m in modes:
        for e in bulk[m].get("errors", []):
            failed.append(f"bulk {m}: {e}")
    print()

# ---- control, interleaved ----
ctl = {}  # (mode, round) -> {row: {...}}
for line in open(ctl_tsv):
    mode, rnd, js = line.rstrip("\n").split("\t", 2)
    ctl[(mode, int(rnd))] = json.loads(js)
    for row, v in ctl[(mode, int(rnd))].items():
        if "error" in v:
            failed.append(f"round {rnd} {mode} {row}: {v['error']}")
nr = max((r for _, r in ctl), default=0)


def val(mode, rnd, row, key="value"):
    v = ctl.get((mode, rnd), {}).get(row, {})
    return v.get(key)


def series(mode, row, key="value"):
    return [val(mode, r, row, key) for r in range(1, nr + 1)]


def per_round(f):
    out = []
    for r in range(1, nr + 1):
        try:
            out.append(f(r))
        except (TypeError, ZeroDivisionError):
            out.append(None)
    return out


print(f"Control path, pyftpdlib, interleaved: {nr} rounds, each running every contender")
print("in turn. Cells: median over the rounds (min–max). Ratios are taken within")
print("each round, then the median (min–max) of those. The hypervisor took")
print(f"{steal}% of this machine's CPU time (steal) while these rounds ran.\n")
print("| per operation | " + " | ".join(CONTENDERS) + " | ftp-proxy ÷ helper |")
print("|---|" + "---:|" * (len(CONTENDERS) + 1))
ROWS = [("command round trip (TYPE I), µs", "cmd", "{:.0f}"),
        ("connect + login + quit, per s", "session", "{:.0f}"),
        ("PASV + LIST, per s", "pasv", "{:.0f}"),
        ("PORT + LIST, per s", "port", "{:.0f}")]
ratios = {}
for label, row, fmt in ROWS:
    cells = []
    for m in CONTENDERS:
        s = series(m, row)
        cells.append("–" if m == "relay" and row in ("pasv", "port") else med_range(s, fmt))
    if row == "cmd":
        rr = "–"
    else:
        ratios[row] = per_round(lambda r: val("ftp-proxy", r, row) / val("helper", r, row))
        rr = med_range(ratios[row], "{:.2f}")
    print(f"| {label} | " + " | ".join(cells) + f" | {rr} |")
added = {m: per_round(lambda r, m=m: val(m, r, "cmd") - val("direct", r, "cmd"))
         for m in CONTENDERS[1:]}
print("| round trip added over direct, µs | – | "
      + " | ".join(med_range(added[m], "{:.0f}") for m in CONTENDERS[1:]) + " | |")
ratios["added"] = per_round(lambda r: (val("ftp-proxy", r, "cmd") - val("direct", r, "cmd"))
                            / (val("relay", r, "cmd") - val("direct", r, "cmd")))
print()

print("CPU of the proxy process per operation, µs (median over the rounds; mod_proxy")
print("with its session processes):\n")
user = ["mod_proxy", "relay", "ftp-proxy"]
print("| CPU µs per | " + " | ".join(user) + " |")
print("|---|" + "---:|" * len(user))
for label, row, _ in ROWS:
    cells = []
    for m in user:
        x = median(series(m, row, "cpu_us"))
        cells.append("–" if x is None else f"{x:.0f}")
    print(f"| {label.split(',')[0]} | " + " | ".join(cells) + " |")
print()

print("Wake-ups of the proxy process per operation (voluntary context switches of")
print("its main thread, median over the rounds; relay and ftp-proxy are one")
print("process, one thread each):\n")
print("| wake-ups per | relay | ftp-proxy |")
print("|---|---:|---:|")
for label, row, _ in ROWS:
    cells = []
    for m in ("relay", "ftp-proxy"):
        x = median(series(m, row, "wakeups"))
        cells.append("–" if x is None else f"{x:.2f}")
    print(f"| {label.split(',')[0]} | " + " | ".join(cells) + " |")
print()

sysc = {}
for line in open(sys_tsv):
    m, row, calls, errs = line.rstrip("\n").split("\t")
    sysc[(m, row)] = (float(calls), float(errs))
print("Syscalls of the proxy process per operation (`strace -c -f`, 1,000 commands or")
print("300 sessions/listings, outside the timed rounds; failed calls in brackets):\n")
print("| syscalls per | " + " | ".join(user) + " |")
print("|---|" + "---:|" * len(user))
for label, row, _ in ROWS:
    cells = []
    for m in user:
        c = sysc.get((m, row))
        cells.append("–" if c is None else f"{c[0]:.1f} ({c[1]:.1f})")
    print(f"| {label.split(',')[0]} | " + " | ".join(cells) + " |")
print()
print("ftp-proxy's calls by name, per operation:\n")
for line in detail.splitlines():
    print(f"- {line}")
print()

ratios["session_relay"] = per_round(lambda r: val("ftp-proxy", r, "session")
                                    / val("relay", r, "session"))
print("Goals (issues 13 and 24), each from this run's per-round ratios:\n")
GOALS = [("command latency added over direct ≤ 1.15 × the relay's", "added", lambda x: x <= 1.15),
         ("connect + login + quit ≥ 0.95 × the relay", "session_relay", lambda x: x >= 0.95),
         ("PASV + LIST ≥ 0.9 × the helper", "pasv", lambda x: x >= 0.9),
         ("PORT + LIST ≥ 0.9 × the helper", "port", lambda x: x >= 0.9)]
for label, key, ok in GOALS:
    x = median(ratios.get(key, []))
    verdict = "failed" if x is None else ("met" if ok(x) else "not met")
    print(f"- {label}: {med_range(ratios.get(key, []), '{:.2f}')}: {verdict}")
if bulk.get("ftp-proxy") and bulk.get("helper"):
    for label, key in [("download", "down_mbs"), ("upload", "up_mbs")]:
        a, b = bulk["ftp-proxy"].get(key), bulk["helper"].get(key)
        if a and b:
            print(f"- 1 GiB {label} ≥ 0.98 × the helper: {a / b:.2f}: "
                  + ("met" if a / b >= 0.98 else "not met"))
if allocs not in ("-", ""):
    # "0 for 3 sessions, …": the count comes first.
    n = allocs.split()[0]
    print(f"- zero heap allocations per command: {n}: " + ("met" if n == "0" else "not met"))
print()

if load != "-":
    print("ftp-proxy alone:\n")
    print(f"- 500 sessions, listings passive and active in turn: {load.strip()}")
    try:
        listings = int(load.split(":")[1].split("listings")[0].strip().split()[0])
        cpu = float(load.split("CPU ")[1].split(" s")[0])
        print(f"- CPU seconds per 1,000 data connections: {cpu / listings * 1000:.3f}")
    except (IndexError, ValueError):
        pass
    print(f"- heap allocations per command in steady state: {allocs}")
    print(f"- instructions per command (TYPE I and its reply, callgrind): {ipc}")
print(f"- resident memory after the run, idle (-m 500): {rss0} KiB; bench/footprint.sh has 0/100/500")
for f in failed:
    print(f"\nfailed: {f}")
if any("ftp-proxy" in f for f in failed):
    sys.exit("ftp-proxy failed a measurement")

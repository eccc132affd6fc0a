#!/usr/bin/python3
"""The cost curve's table and plot (bench/curve.sh).

curve_report.py TSV JSONL CLK_TCK PNG DATE HOST CPUS ROUNDS SECS

TSV rows: mode, busy sessions, contender, round, machine CPU ticks,
process CPU ticks (empty for the helper), process peak RSS KiB (empty);
JSONL: bench/busy.c's output for each row, in the same order. Cells are
medians over the rounds. CPU per listing divides the CPU of the whole run
(logins included) by every listing it finished (all_ops).
"""
import json
import statistics
import sys

CONTENDERS = ["helper", "relay", "ftp-proxy"]
MODES = {"pasv": "PASV + LIST", "port": "PORT + LIST"}
FAILED = []
ERRORS = []


def load(tsv, jsonl, tick):
    rows = {}
    with open(tsv) as t, open(jsonl) as j:
        for line, out in zip(t, j):
            mode, n, m, _round, machine, proc, rss = line.rstrip("\n").split("\t")
            r = json.loads(out)
            cell = rows.setdefault((mode, int(n), m), [])
            if "failed" in r:
                FAILED.append(f"{MODES[mode]}, {n} busy sessions, {m}: {r['failed']}")
                continue
            ops = max(r["all_ops"], 1)
            cell.append({
                "rate": r["ops"] / r["secs"],
                "cpu_machine": int(machine) / tick * 1e6 / ops,
                "cpu_proc": int(proc) / tick * 1e6 / ops if proc else None,
                "p50": r["probe_p50_us"],
                "p99": r["probe_p99_us"],
                "rss": int(rss) if rss else None,
                "errors": r["errors"],
            })
            if r["errors"]:
                ERRORS.append(f"{MODES[mode]}, {n} busy sessions, {m}, round {_round}: "
                              f"{r['errors']}, the first: {r.get('first_error') or '?'}")
    return rows


def med(cell, key):
    vals = [c[key] for c in cell if c[key] is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=0):
    return "–" if v is None else f"{v:,.{nd}f}"


def table(rows, mode, points):
    out = [
        f"**{MODES[mode]}**",
        "",
        "| busy sessions | contender | listings/s | CPU µs per listing, machine | "
        "CPU µs per listing, process | probe NOOP p50 / p99, µs | peak RSS, KiB | errors |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in points:
        for m in CONTENDERS:
            cell = rows.get((mode, n, m))
            if not cell:
                continue
            out.append(
                f"| {n} | {m} | {fmt(med(cell, 'rate'))} | {fmt(med(cell, 'cpu_machine'))} | "
                f"{fmt(med(cell, 'cpu_proc'))} | {fmt(med(cell, 'p50'))} / {fmt(med(cell, 'p99'))} | "
                f"{fmt(med(cell, 'rss'))} | {sum(c['errors'] for c in cell)} |"
            )
    return "\n".join(out)


def plot(rows, points, png, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"helper": "tab:blue", "relay": "tab:green", "ftp-proxy": "tab:red"}
    styles = {"pasv": "-", "port": "--"}
    panels = [
        ("rate", "listings per second"),
        ("cpu_machine", "CPU µs per listing, whole machine"),
        ("cpu_proc", "CPU µs per listing, proxy process"),
        ("p99", "probe NOOP round trip p99, µs"),
        ("p50", "probe NOOP round trip p50, µs"),
        ("rss", "proxy process peak RSS, KiB"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    for ax, (key, label) in zip(axes.flat, panels):
        for m in CONTENDERS:
            for mode in MODES:
                xs, ys = [], []
                for n in points:
                    v = med(rows.get((mode, n, m), []), key) if rows.get((mode, n, m)) else None
                    if v is not None:
                        xs.append(n)
                        ys.append(v)
                if xs:
                    ax.plot(xs, ys, styles[mode], color=colors[m], marker="o",
                            label=f"{m} {MODES[mode]}")
        ax.set_xscale("log")
        if key in ("p50", "p99"):
            ax.set_yscale("log")
        ax.set_xticks(points)
        ax.set_xticklabels([str(p) for p in points])
        ax.set_xlabel("busy sessions")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_ylim(bottom=0 if key not in ("p50", "p99") else None)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=80)


def main(argv):
    tsv, jsonl, tick, png, date, host, cpus, rounds, secs, steal = argv[1:11]
    rows = load(tsv, jsonl, int(tick))
    points = sorted({k[1] for k in rows})
    title = f"Cost curve {date} on {host} ({cpus} CPUs), bench/curve.sh, vsftpd"
    plot(rows, points, png, title)
    print(f"{title}: {rounds} rounds of {secs} s per cell, contenders interleaved;")
    print("cells are medians. Each busy session lists a directory of 20 files again")
    print("and again; one more session sends NOOP every 10 ms (the probe). CPU of the")
    print("whole machine counts client, server, router and kernel; CPU of the process")
    print("only the relay's or ftp-proxy's own (the helper has none). The hypervisor")
    print(f"took {steal}% of this machine's CPU time (steal) during the run.")
    print()
    for mode in MODES:
        print(table(rows, mode, points))
        print()
    for f in FAILED:
        print(f"failed: {f}")
        print()
    if ERRORS:
        print("Sessions that started again (an unexpected reply or a lost connection):")
        print()
        for e in ERRORS:
            print(f"- {e}")
        print()
    print(f"![cost curve]({png.rsplit('/', 1)[-1]})")


if __name__ == "__main__":
    main(sys.argv)

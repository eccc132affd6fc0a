#!/usr/bin/env python3
"""Control-path rows for one contender (bench/run.sh), python ftplib
against pyftpdlib.

control.py HOST PORT [--secs S | --count N] [--cpu-pid PID] ROW...
ROW: cmd      sequential TYPE I round trips on one session (a command
              every server and proxy here relays: ProFTPD mod_proxy
              answers NOOP itself); value: median µs (N or 1000 of them)
     session  connect + login + quit, one after the other; value: per s
     pasv     PASV + LIST on one session; value: per s
     port     PORT + LIST on one session; value: per s
Rates run S seconds (default 2) or exactly N operations. With --cpu-pid,
each row also reports the CPU the process (and its reaped children) spent
per operation, in µs, and how often it went to sleep and was woken
(voluntary context switches of its main thread) per operation. Prints one
JSON object: {row: {value, ops, cpu_us, wakeups}}.
Every listing must have the server's files in it.
"""
import json
import os
import statistics
import sys
import time

from bulk import login  # the same anonymous login for every row

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    if pid is None:
        return None
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime stime cutime cstime (fields 14-17 of proc(5))
    return sum(int(x) for x in fields[11:15]) / TICK


def wakeups(pid):
    """Voluntary context switches: each is a sleep in epoll_wait (or a
    blocking call) that something had to wake."""
    if pid is None:
        return None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    return None


class Budget:
    """S seconds or N operations, whichever the caller asked for."""

    def __init__(self, secs, count):
        self.count, self.n = count, 0
        self.end = time.perf_counter() + secs

    def more(self):
        if self.count is not None:
            return self.n < self.count
        return time.perf_counter() < self.end

    def done(self):
        self.n += 1


def cmd(host, port, budget):
    f = login(host, port)
    lat = []
    if budget.count is None:
        budget.count = 1000
    while budget.more():
        t = time.perf_counter()
        f.voidcmd("TYPE I")
        lat.append((time.perf_counter() - t) * 1e6)
        budget.done()
    f.quit()
    return statistics.median(lat), len(lat)


def session(host, port, budget):
    n, t = 0, time.perf_counter()
    while budget.more():
        login(host, port).quit()
        budget.done()
        n += 1
    return n / (time.perf_counter() - t), n


def listings(passive):
    def run(host, port, budget):
        f = login(host, port)
        f.set_pasv(passive)
        n, t = 0, time.perf_counter()
        while budget.more():
            lines = []
            f.retrlines("LIST", lines.append)
            if len(lines) < 20:
                raise SystemExit(f"listing of {len(lines)} lines")
            budget.done()
            n += 1
        dt = time.perf_counter() - t
        f.quit()
        return n / dt, n

    return run


ROWS = {"cmd": cmd, "session": session, "pasv": listings(True), "port": listings(False)}


def main(argv):
    args = argv[1:]
    secs, count, pid = 2.0, None, None
    host, port = args.pop(0), int(args.pop(0))
    rows = []
    while args:
        a = args.pop(0)
        if a == "--secs":
            secs = float(args.pop(0))
        elif a == "--count":
            count = int(args.pop(0))
        elif a == "--cpu-pid":
            pid = int(args.pop(0))
        else:
            rows.append(a)
    out = {}
    for r in rows:
        c0, w0 = cpu_seconds(pid), wakeups(pid)
        try:
            value, ops = ROWS[r](host, port, Budget(secs, count))
        except (Exception, SystemExit) as e:  # noqa: BLE001 - reported
            out[r] = {"error": repr(e)}
            continue
        cpu = None if pid is None else (cpu_seconds(pid) - c0) / ops * 1e6
        w1 = wakeups(pid)
        wake = None if w0 is None or w1 is None else (w1 - w0) / ops
        out[r] = {"value": value, "ops": ops, "cpu_us": cpu, "wakeups": wake}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)

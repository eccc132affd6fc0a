#!/usr/bin/env python3
"""One FTP path measured from the client namespace (bench/run.sh).

ftpbench.py HOST PORT BIGFILE BIGSIZE
Prints one JSON object:
  down_mbs, up_mbs    1 GiB passive download / active upload, MB/s, best of 3
  noop_med_us, noop_p99_us   1,000 sequential commands on one session:
                      TYPE I, a round trip every server and proxy here
                      relays (ProFTPD mod_proxy 0.9.2 in reverse mode answers
                      NOOP, PWD, SYST and SIZE itself with 530)
  list_per_s          PASV + LIST round trips on one session, 3 s
  sess_seq_per_s      connect + login + quit, one after the other, 3 s
  sess_par_per_s      the same from 50 threads at once, 3 s
Every transfer is checked: the byte count must be BIGSIZE.
"""
import ftplib
import json
import os
import statistics
import sys
import threading
import time

CHUNK = 1 << 20


def login(host, port):
    f = ftplib.FTP(timeout=30)
    f.connect(host, port)
    f.login("anonymous", "bench@example.org")
    return f


def download(host, port, name, size):
    f = login(host, port)
    f.voidcmd("TYPE I")
    f.set_pasv(True)
    buf = bytearray(CHUNK)
    t = time.perf_counter()
    got = 0
    with f.transfercmd(f"RETR {name}") as c:
        while True:
            n = c.recv_into(buf)
            if not n:
                break
            got += n
    f.voidresp()
    dt = time.perf_counter() - t
    f.quit()
    if got != size:
        raise SystemExit(f"download: {got} of {size} bytes")
    return size / dt / 1e6


def upload(host, port, size, n):
    f = login(host, port)
    f.voidcmd("TYPE I")
    f.set_pasv(False)
    block = bytes(CHUNK)
    t = time.perf_counter()
    name = f"pub/up-{os.getpid()}-{n}.bin"
    with f.transfercmd(f"STOR {name}") as c:
        left = size
        while left:
            n = min(left, CHUNK)
            c.sendall(block[:n])
            left -= n
    f.voidresp()
    dt = time.perf_counter() - t
    f.close()
    # Checked by a listing on a session of its own (see noops on SIZE).
    g = login(host, port)
    lines = []
    g.retrlines(f"LIST {name}", lines.append)
    g.quit()
    fields = lines[0].split() if lines else []
    got = int(fields[4]) if len(fields) > 4 and fields[4].isdigit() else -1
    if got != size:
        raise SystemExit(f"upload: {got} of {size} bytes on the server")
    return size / dt / 1e6


def noops(host, port, n=1000):
    f = login(host, port)
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        f.voidcmd("TYPE I")
        lat.append((time.perf_counter() - t) * 1e6)
    f.quit()
    lat.sort()
    return statistics.median(lat), lat[int(len(lat) * 0.99) - 1]


def listings(host, port, secs=3.0):
    f = login(host, port)
    f.set_pasv(True)
    n, end = 0, time.perf_counter() + secs
    t = time.perf_counter()
    while time.perf_counter() < end:
        lines = []
        f.retrlines("LIST", lines.append)
        if not lines:
            raise SystemExit("empty listing")
        n += 1
    dt = time.perf_counter() - t
    f.quit()
    return n / dt


def sessions(host, port, threads, secs=3.0):
    count = [0] * threads
    errors = []
    end = time.perf_counter() + secs

    def run(i):
        try:
            while time.perf_counter() < end:
                login(host, port).quit()
                count[i] += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    t = time.perf_counter()
    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for x in ts:
        x.start()
    for x in ts:
        x.join()
    dt = time.perf_counter() - t
    if errors:
        raise SystemExit(f"sessions: {len(errors)} failed, first: {errors[0]}")
    return sum(count) / dt


def measured(out, keys, f):
    """Runs one measurement; a failure is recorded, not hidden."""
    try:
        v = f()
    except (Exception, SystemExit) as e:  # noqa: BLE001 - reported
        out.setdefault("errors", []).append(f"{keys}: {e!r}")
        v = (None,) * len(keys) if len(keys) > 1 else None
    for k, x in zip(keys, v if len(keys) > 1 else (v,)):
        out[k] = x


def main(argv):
    host, port, big, size = argv[1], int(argv[2]), argv[3], int(argv[4])
    out = {}
    measured(out, ["down_mbs"], lambda: max(download(host, port, big, size) for _ in range(3)))
    measured(out, ["up_mbs"], lambda: max(upload(host, port, size, i) for i in range(3)))
    measured(out, ["noop_med_us", "noop_p99_us"], lambda: noops(host, port))
    measured(out, ["list_per_s"], lambda: listings(host, port))
    measured(out, ["sess_seq_per_s"], lambda: sessions(host, port, 1))
    measured(out, ["sess_par_per_s"], lambda: sessions(host, port, 50))
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""Bulk transfers through one FTP path, from the client namespace
(bench/run.sh; the control rows are bench/control.py).

bulk.py HOST PORT BIGFILE BIGSIZE
Prints one JSON object:
  down_mbs, up_mbs    passive download / active upload, MB/s, best of 3
Every transfer is checked: the byte count must be BIGSIZE.
"""
import ftplib
import json
import os
import sys
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
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)

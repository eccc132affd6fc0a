#!/usr/bin/env python3
"""Opens N FTP sessions through a proxy and holds them for SECS seconds,
the first one with a pending passive mapping (PASV).
Usage: hold_sessions.py ADDR PORT N SECS"""
import socket, sys, time

addr, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
held = []
for i in range(n):
    s = socket.create_connection((addr, port), timeout=10)
    f = s.makefile("rb")
    f.readline()
    for cmd in [b"USER anonymous", b"PASS x"] + ([b"PASV"] if i == 0 else []):
        s.sendall(cmd + b"\r\n")
        f.readline()
    held.append((s, f))
time.sleep(secs)

#!/usr/bin/env python3
"""Scripted FTP client for the namespace suite (python3 ftplib).

ftpcli.py HOST PORT MODE SRC OUT NAME [--user U] [--expect-src-port P]
          [--slow 1]
MODE is pasv, epsv, port or eprt, forced on either address family.
Downloads file.bin to OUT, uploads SRC as pub/NAME, lists pub/ and prints
one line: "ok <sha256 of OUT> <listing has NAME: yes|no>". With --slow,
the download reads 16 KiB every 50 ms (about 320 KB/s).
"""
import ftplib
import hashlib
import socket
import sys
import time


class Client(ftplib.FTP):
    mode = "pasv"
    expect_src_port = None

    def makepasv(self):
        if self.mode == "epsv":
            host, port = ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
            return host, port
        return super().makepasv()

    def makeport(self):
        # Listen on the control connection's local address, as clients do.
        af = self.sock.family
        sock = socket.create_server((self.sock.getsockname()[0], 0), family=af, backlog=1)
        host, port = sock.getsockname()[:2]
        if self.mode == "eprt":
            self.sendeprt(host, port)
        else:
            self.sendport(host, port)
        if self.timeout is not None:
            sock.settimeout(self.timeout)
        return sock

    def ntransfercmd(self, cmd, rest=None):
        self.set_pasv(self.mode in ("pasv", "epsv"))
        conn, size = super().ntransfercmd(cmd, rest)
        if self.expect_src_port is not None:
            got = conn.getpeername()[1]
            if got != self.expect_src_port:
                raise SystemExit(f"data connection came from port {got}, expected {self.expect_src_port}")
        return conn, size


def main(argv):
    host, port, mode, src, out, name = argv[1:7]
    opts = dict(zip(argv[7::2], argv[8::2]))
    Client.mode = mode
    if "--expect-src-port" in opts:
        Client.expect_src_port = int(opts["--expect-src-port"])
    ftp = Client(timeout=20)
    ftp.connect(host, int(port))
    ftp.login(opts.get("--user", "anonymous"), "test@example.org")
    slow = opts.get("--slow") == "1"
    h = hashlib.sha256()
    with open(out, "wb") as f:
        def sink(b):
            h.update(b)
            f.write(b)
            if slow:
                time.sleep(0.05)
        ftp.retrbinary("RETR file.bin", sink, blocksize=16384 if slow else 8192)
    with open(src, "rb") as f:
        ftp.storbinary(f"STOR pub/{name}", f)
    names = ftp.nlst("pub")
    ftp.quit()
    listed = any(n.rsplit("/", 1)[-1] == name for n in names)
    print("ok", h.hexdigest(), "yes" if listed else "no")


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""Aborts a download as BSD ftp(1) and lftp do, then downloads again.

ftpabort.py HOST PORT BIG SMALL OUT
Starts RETR BIG in passive mode, reads 64 KiB, closes the data connection
and sends the Telnet abort: IAC IP IAC as TCP urgent data, then "DM ABOR".
Collects the reply codes until the ABOR is answered (225/226), then
downloads SMALL to OUT: prints "ok <codes> <sha256 of OUT>".
"""
import ftplib
import hashlib
import socket
import sys

IAC, IP, DM = b"\xff", b"\xf4", b"\xf2"


def main(argv):
    host, port, big, small, out = argv[1:6]
    ftp = ftplib.FTP(timeout=15)
    ftp.connect(host, int(port))
    ftp.login("anonymous", "test@example.org")
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd(f"RETR {big}")
    got = 0
    while got < 65536:
        b = conn.recv(65536 - got)
        if not b:
            raise SystemExit("data connection closed early")
        got += len(b)
    conn.close()
    ftp.sock.send(IAC + IP + IAC, socket.MSG_OOB)
    ftp.sock.sendall(DM + b"ABOR\r\n")
    codes = []
    while len(codes) < 4:
        codes.append(ftp.getmultiline()[:3])
        if codes[-1] in ("225", "226"):
            break
    h = hashlib.sha256()
    with open(out, "wb") as f:
        def sink(b):
            h.update(b)
            f.write(b)
        ftp.retrbinary(f"RETR {small}", sink)
    ftp.quit()
    print("ok", ",".join(codes), h.hexdigest())


if __name__ == "__main__":
    main(sys.argv)

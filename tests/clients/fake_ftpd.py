#!/usr/bin/env python3
"""A scripted FTP server for demos: greets, logs in anyone, answers PASV
and EPSV with a port on its own address, everything else with 200.
Usage: fake_ftpd.py ADDR PORT"""
import socketserver, sys

class Session(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"220 stand-in FTP server\r\n")
        for line in self.rfile:
            verb = line.split(b" ")[0].strip().upper()
            reply = {
                b"USER": b"331 password\r\n", b"PASS": b"230 in\r\n",
                b"PASV": b"227 Entering Passive Mode (127,0,0,1,117,48)\r\n",
                b"EPSV": b"229 Entering Extended Passive Mode (|||30000|)\r\n",
                b"QUIT": b"221 bye\r\n",
            }.get(verb, b"200 ok\r\n")
            self.wfile.write(reply)
            if verb == b"QUIT":
                return

class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

Server((sys.argv[1], int(sys.argv[2])), Session).serve_forever()

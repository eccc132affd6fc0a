#!/usr/bin/python3
"""The control rows' origin server (bench/run.sh): pyftpdlib, anonymous,
read-only. It does not fork, so its own cost does not hide the proxies'.

pyftpd.py ADDR PORT ROOT
"""
import logging
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main(addr, port, root):
    logging.basicConfig(level=logging.ERROR)
    auth = DummyAuthorizer()
    auth.add_anonymous(root)
    FTPHandler.authorizer = auth
    FTPHandler.banner = "pyftpdlib ready"
    server = FTPServer((addr, int(port)), FTPHandler)
    server.max_cons = 1024
    server.serve_forever(handle_exit=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])

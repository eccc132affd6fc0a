#!/usr/bin/python3
"""A real FTP server for the lab, from Debian's python3-pyftpdlib (run by
Debian's own /usr/bin/python3, where that package lives).

Anonymous and user `lab` (password `secret`, for clients that try TLS
only for real logins), read-only, rooted at ROOT, on ADDR port 21.
  --old        EPSV and EPRT removed, so they get pyftpdlib's
               `500 Command "EPSV" not understood.`, as old servers answer
  --tls CERT   explicit FTPS offered (AUTH TLS, PBSZ, PROT in FEAT) with
               the key and certificate in CERT; plain FTP still allowed
"""
import argparse
import logging

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer

ap = argparse.ArgumentParser()
ap.add_argument("addr")
ap.add_argument("root")
ap.add_argument("--old", action="store_true")
ap.add_argument("--tls")
a = ap.parse_args()

base = TLS_FTPHandler if a.tls else FTPHandler


class Handler(base):
    pass


Handler.proto_cmds = dict(base.proto_cmds)
if a.old:
    for verb in ("EPSV", "EPRT"):
        Handler.proto_cmds.pop(verb)
if a.tls:
    Handler.certfile = a.tls
auth = DummyAuthorizer()
auth.add_anonymous(a.root)
auth.add_user("lab", "secret", a.root, perm="elr")
Handler.authorizer = auth
logging.basicConfig(level=logging.INFO)
FTPServer((a.addr, 21), Handler).serve_forever()

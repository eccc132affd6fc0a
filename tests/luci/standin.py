#!/usr/bin/env python3
"""A stand-in for uhttpd + rpcd, enough for LuCI's own JavaScript runtime to
render this app's views in a browser.

- /luci-static/... from LuCI's htdocs (given, never part of this project),
  with the app's own view files over them;
- /cgi-bin/luci/admin/... : the page LuCI's view.ut writes for a view;
- /ubus/ : JSON-RPC as rpcd answers it, with the ACL groups of the app's
  acl.d file enforced like rpcd does (a call outside them is "access
  denied"), uci from fixture files, and `ftp-proxy status` from the real
  rpcd plugin (which asks the running proxies).

Every uci call that changes something is appended to CALLS (JSON lines).
"""
import json, os, subprocess, sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
APP = os.path.join(ROOT, "openwrt", "luci-app-ftp-proxy")
LUCI = os.environ["LUCI_HTDOCS"]
GROUPS = os.environ.get("ACL_GROUPS", "luci-app-ftp-proxy").split(",")
CALLS = os.environ.get("CALLS", "/dev/null")
PLUGIN = os.path.join(ROOT, "openwrt", "files", "ftp-proxy.rpcd")

with open(os.path.join(APP, "root/usr/share/rpcd/acl.d/luci-app-ftp-proxy.json")) as f:
    ACL = json.load(f)
with open(os.path.join(APP, "root/usr/share/luci/menu.d/luci-app-ftp-proxy.json")) as f:
    MENU = json.load(f)

# What LuCI grants every logged-in user (luci-base's own ACL, in short).
BASE_UBUS = {"luci": "*", "session": "*", "system": ["board", "info"]}
BASE_UCI = ["luci"]

UCI = {
    "ftp-proxy": {
        "main": {".name": "main", ".type": "ftp-proxy", ".anonymous": False, ".index": 0,
                 "enabled": "1", "network": ["lan"], "max_sessions": "100", "log_level": "5"},
    },
    "network": {
        "loopback": {".name": "loopback", ".type": "interface", ".anonymous": False, ".index": 0,
                     "device": "lo", "proto": "static", "ipaddr": "127.0.0.1"},
        "lan": {".name": "lan", ".type": "interface", ".anonymous": False, ".index": 1,
                "device": "br-lan", "proto": "static", "ipaddr": "198.18.1.1", "netmask": "255.255.255.0"},
        "guest": {".name": "guest", ".type": "interface", ".anonymous": False, ".index": 2,
                  "device": "br-guest", "proto": "static", "ipaddr": "198.18.7.1", "netmask": "255.255.255.0"},
        "wan": {".name": "wan", ".type": "interface", ".anonymous": False, ".index": 3,
                "device": "eth1", "proto": "dhcp"},
    },
    "wireless": {},
    "luci": {},
}

def iface(name, dev, addr):
    return {"interface": name, "up": True, "proto": "static" if addr else "dhcp", "device": dev,
            "l3_device": dev, "ipv4-address": [{"address": addr, "mask": 24}] if addr else [],
            "ipv6-address": [], "ipv6-prefix": [], "ipv6-prefix-assignment": [], "route": [],
            "dns-server": [], "dns-search": [], "inactive": {}, "data": {}}

UBUS = {
    ("network.interface", "dump"): {"interface": [
        iface("loopback", "lo", "127.0.0.1"), iface("lan", "br-lan", "198.18.1.1"),
        iface("guest", "br-guest", "198.18.7.1"), iface("wan", "eth1", None)]},
    ("network", "get_proto_handlers"): {"static": {"no_device": False}, "dhcp": {"no_device": False}},
    ("luci-rpc", "getNetworkDevices"): {d: {"name": d, "up": True, "flags": {"up": True}, "stats": {}, "ipaddrs": [], "ip6addrs": []}
                                        for d in ["lo", "br-lan", "br-guest", "eth1"]},
    ("luci-rpc", "getWirelessDevices"): {},
    ("luci-rpc", "getBoardJSON"): {},
    ("system", "board"): {"hostname": "OpenWrt", "model": "stand-in", "release": {"distribution": "OpenWrt"}},
    ("luci", "getFeatures"): {},
    ("luci", "getVersion"): {"revision": "stand-in", "branch": "stand-in"},
}

def granted(kind, obj, method=None, write=False):
    if kind == "ubus" and (BASE_UBUS.get(obj) == "*" or method in BASE_UBUS.get(obj, [])):
        return True
    if kind == "uci" and obj in BASE_UCI:
        return True
    for g in GROUPS:
        for mode in (["write"] if write else ["read", "write"]):
            perms = ACL.get(g, {}).get(mode, {}).get(kind)
            if perms is None:
                continue
            if kind == "uci" and (obj in perms or "*" in perms):
                return True
            if kind == "ubus" and (method in perms.get(obj, []) or "*" in perms.get(obj, [])):
                return True
    return False

def log_call(entry):
    with open(CALLS, "a") as f:
        f.write(json.dumps(entry) + "\n")

def call(obj, method, args):
    """(status, result) as rpcd gives them: 0 ok, 6 access denied."""
    if obj == "session" and method == "access":
        scope, o, fn = args.get("scope"), args.get("object"), args.get("function")
        if scope == "uci":
            return 0, {"access": granted("uci", o, write=fn == "write")}
        if scope == "ubus":
            return 0, {"access": granted("ubus", o, fn)}
        return 0, {"access": True}
    if obj == "uci":
        config = args.get("config")
        writes = method in ("set", "delete", "add", "rename", "order", "apply", "confirm", "rollback")
        if method in ("set", "delete", "add", "rename", "order") and not granted("uci", config, write=True):
            return 6, None
        if method == "get":
            if not granted("uci", config):
                return 6, None
            return 0, {"values": UCI.get(config, {})}
        if method == "changes":
            return 0, {"changes": {}}
        if writes:
            log_call({"method": method, "args": args})
            if method == "add":
                return 0, {"section": "cfg%06x" % (hash(json.dumps(args)) & 0xffffff)}
            return 0, None
        return 0, None
    if not granted("ubus", obj, method):
        return 6, None
    if (obj, method) == ("ftp-proxy", "status"):
        env = dict(os.environ, FTP_PROXY_BIN=os.environ.get("FTP_PROXY_BIN", "/usr/sbin/ftp-proxy"))
        out = subprocess.run([PLUGIN, "call", "status"], input=b"{}", capture_output=True, env=env, timeout=20)
        return 0, json.loads(out.stdout)
    if (obj, method) in UBUS:
        return 0, UBUS[(obj, method)]
    sys.stderr.write(f"stand-in rpcd: no such call {obj}.{method}\n")
    return 3, None  # UBUS_STATUS_METHOD_NOT_FOUND

def menu_tree():
    root = {"satisfied": True, "children": {}}
    for path, node in MENU.items():
        at = root
        for part in path.split("/"):
            at = at["children"].setdefault(part, {"satisfied": True, "children": {}, "title": part, "action": {"type": "firstchild"}})
        at.update(node)
        at["satisfied"] = True
    return root

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>OpenWrt - LuCI</title>
<link rel="stylesheet" href="/luci-static/bootstrap/cascade.css">
<link rel="icon" href="/luci-static/bootstrap/logo_48.png" sizes="48x48">
<script src="/cgi-bin/luci/admin/translations/en"></script>
<script src="/luci-static/resources/cbi.js"></script>
</head><body class="lang_en" data-page="admin-{page}">
<header><a class="brand" href="/">OpenWrt</a><ul class="nav" id="topmenu" style="display:none"></ul><div id="indicators" class="pull-right"></div></header>
<div id="maincontent" class="container">
<div id="tabmenu" style="display:none"></div>
<script src="/luci-static/resources/promis.min.js"></script>
<script src="/luci-static/resources/luci.js"></script>
<script>L = new LuCI({env});</script>
<div id="view"><div class="spinning">Loading view…</div>
<script>L.require('ui').then(function(ui) {{ ui.instantiateView('{view}'); }});</script>
</div></div></body></html>"""

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, code, body, ctype):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith("/luci-static/"):
            rel = path[len("/"):]
            for base in (os.path.join(APP, "htdocs"), LUCI):
                f = os.path.join(base, rel)
                if os.path.isfile(f):
                    ctype = "application/javascript" if f.endswith(".js") else "text/css" if f.endswith(".css") else "image/png" if f.endswith(".png") else "image/svg+xml" if f.endswith(".svg") else "application/octet-stream"
                    with open(f, "rb") as fh:
                        return self.send(200, fh.read(), ctype)
            sys.stderr.write(f"stand-in: 404 {path}\n")
            return self.send(404, "not found", "text/plain")
        if path.startswith("/cgi-bin/luci/admin/translations"):
            return self.send(200, "window.TR={};", "application/javascript")
        if path == "/cgi-bin/luci/admin/menu":
            return self.send(200, json.dumps(menu_tree()), "application/json")
        if path.startswith("/cgi-bin/luci/admin/"):
            req = path[len("/cgi-bin/luci/"):].strip("/")
            node = MENU.get(req)
            if node is None:
                return self.send(404, "no such page", "text/plain")
            env = {
                "media": "/luci-static/bootstrap", "resource": "/luci-static/resources",
                "scriptname": "/cgi-bin/luci", "pathinfo": "/" + req, "documentroot": "/www",
                "requestpath": req.split("/"), "dispatchpath": req.split("/"), "pollinterval": 5,
                "ubuspath": "/ubus/", "sessionid": "0123456789abcdef0123456789abcdef", "token": "t",
                "nodespec": dict(node, satisfied=True), "apply_rollback": 90, "apply_holdoff": 4,
                "apply_timeout": 5, "apply_display": 1.5, "rollback_token": None,
            }
            page = PAGE.format(env=json.dumps(env), view=node["action"]["path"], page="-".join(req.split("/")[1:]))
            return self.send(200, page, "text/html; charset=UTF-8")
        sys.stderr.write(f"stand-in: 404 {path}\n")
        return self.send(404, "not found", "text/plain")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path.split("?")[0]
        # Save & Apply goes through LuCI's own controller, not ubus.
        if path in ("/cgi-bin/luci/admin/uci/apply_rollback", "/cgi-bin/luci/admin/uci/apply_unchecked"):
            log_call({"method": "apply", "args": {"rollback": path.endswith("rollback")}})
            if path.endswith("rollback"):
                return self.send(200, json.dumps({"token": "0123"}), "application/json")
            self.send_response(204)
            self.end_headers()
            return
        if path in ("/cgi-bin/luci/admin/uci/confirm", "/cgi-bin/luci/admin/uci/revert"):
            self.send_response(204 if path.endswith("confirm") else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        # cgi-io's exec: only what LuCI's apply asks (who is connected).
        if path == "/cgi-bin/cgi-exec":
            return self.send(200, json.dumps({"remote_addr": "198.18.1.2", "inbound_interfaces": ["lan"]}), "application/json")
        if path != "/ubus/":
            return self.send(404, "not found", "text/plain")
        req = json.loads(body)
        batch = isinstance(req, list)
        replies = []
        for r in (req if batch else [req]):
            if r.get("method") == "list":
                replies.append({"jsonrpc": "2.0", "id": r.get("id"), "result": {}})
                continue
            _sid, obj, method, args = (r.get("params") or [None, None, None, {}])[:4]
            status, result = call(obj, method, args or {})
            if status == 6:
                replies.append({"jsonrpc": "2.0", "id": r.get("id"), "error": {"code": -32002, "message": "Access denied"}})
                continue
            res = [status] if result is None else [status, result]
            replies.append({"jsonrpc": "2.0", "id": r.get("id"), "result": res})
        self.send(200, json.dumps(replies if batch else replies[0]), "application/json")

if __name__ == "__main__":
    port = int(sys.argv[1])
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

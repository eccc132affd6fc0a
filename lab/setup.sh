#!/usr/bin/env bash
# Installs what building ftp-proxy and its namespace suite need, on Debian
# or Ubuntu, as root. Safe to run again.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

# python3-pyftpdlib, python3-openssl, openssl: a third real server, with
# EPSV switched off or FTPS offered (tests/servers/pyftpd.py).
# nodejs: the OpenWrt tests check the LuCI view with `node --check`.
# php-cli, libxml2-utils, python3-jinja2, shellcheck: the pfSense and
# OPNsense package tests (php -l, xmllint, the GUI templates).
pkgs=(nftables iproute2 curl lftp python3 proftpd-core coreutils procps util-linux ca-certificates gcc libc6-dev nodejs php-cli libxml2-utils python3-jinja2 shellcheck python3-pyftpdlib python3-openssl openssl keepalived conntrackd conntrack)
apt-get update -qq
if ! command -v cargo >/dev/null; then
    # Debian 12's own cargo (1.63) is too old for mio 1; its cargo-web is not.
    if apt-cache show cargo-web >/dev/null 2>&1; then pkgs+=(cargo-web); else pkgs+=(cargo); fi
fi
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null

# vsftpd and proftpd-core conflict as packages (both are "ftp-server"), so
# vsftpd is unpacked beside ProFTPD: its libraries come from apt.
if [ ! -x /usr/sbin/vsftpd ] && [ ! -x /opt/vsftpd/usr/sbin/vsftpd ]; then
    apt-get install -y -qq --no-install-recommends libcap2 libpam0g libssl3 libwrap0 >/dev/null
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download vsftpd >/dev/null)
    mkdir -p /opt/vsftpd
    dpkg-deb -x "$tmp"/vsftpd_*.deb /opt/vsftpd
    rm -rf "$tmp"
fi
# Anonymous logins map to user ftp (created by proftpd-core's package).
id ftp >/dev/null 2>&1 || useradd --system --home-dir /srv/ftp --shell /usr/sbin/nologin ftp
vsftpd=/usr/sbin/vsftpd; [ -x "$vsftpd" ] || vsftpd=/opt/vsftpd/usr/sbin/vsftpd
echo "setup.sh: ready: $(nft --version), $(proftpd --version 2>&1 | head -1), vsftpd at $vsftpd"

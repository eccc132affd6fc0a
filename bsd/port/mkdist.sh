#!/bin/sh
# Makes the port's distfile, ftp-proxy-VERSION.tar.gz, from the checked-out
# commit (git archive), into $DISTDIR/ftp-proxy (default
# /usr/ports/distfiles): then `make makesum` in bsd/port/ftp/ftp-proxy-rs.
set -eu
cd "$(dirname "$0")/../.."
v=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
out="${DISTDIR:-/usr/ports/distfiles}/ftp-proxy"
mkdir -p "$out"
git archive --format=tar --prefix="ftp-proxy-$v/" HEAD | gzip -n > "$out/ftp-proxy-$v.tar.gz"
echo "$out/ftp-proxy-$v.tar.gz"

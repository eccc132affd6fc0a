#!/bin/sh
# Regenerates the port's CARGO_CRATES and distinfo from Cargo.lock (its
# checksums) and cargo's download cache (the sizes): run after a
# dependency changes. `cargo fetch` first fills the cache.
set -eu
cd "$(dirname "$0")/../.."
port=bsd/port/ftp/ftp-proxy-rs
for cache in "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/index.crates.io-*; do break; done
crates=$(awk '/^\[\[package\]\]/ { n = ""; v = "" }
    /^name = / { n = $3 } /^version = / { v = $3 }
    /^checksum = / { gsub(/"/, "", n); gsub(/"/, "", v); gsub(/"/, "", $3); print n "-" v, $3 }' Cargo.lock)
{
    echo "TIMESTAMP = $(git log -1 --format=%ct -- Cargo.lock)"
    echo "$crates" | while read -r crate sum; do
        size=$(wc -c < "$cache/$crate.crate")
        echo "SHA256 (rust/crates/$crate.crate) = $sum"
        echo "SIZE (rust/crates/$crate.crate) = $size"
    done
} > "$port/distinfo"
list=$(echo "$crates" | awk '{ printf "\t\t%s \\\n", $1 }' | sed '$ s/ \\$//')
awk -v list="$list" '/^CARGO_CRATES=/ { print "CARGO_CRATES=\t\\"; print list; skip = 1; next }
    skip && /\\$/ { next } skip { skip = 0; next } { print }' "$port/Makefile" > "$port/Makefile.new"
mv "$port/Makefile.new" "$port/Makefile"

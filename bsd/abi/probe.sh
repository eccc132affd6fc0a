#!/bin/sh
# Prints, for each target, every size/offset/ioctl number pfabi.c names, as
# clang lays out the given BSD headers: probe.sh OPENBSD_ROOT FREEBSD_ROOT
# (each an include directory holding net/pfvar.h and what it includes).
# Nothing is run on a BSD: the values are read from the compiler's assembly.
set -eu
here=$(dirname "$0")
[ $# -eq 2 ] || { echo "usage: $0 OPENBSD_INCLUDE FREEBSD_INCLUDE" >&2; exit 2; }
probe() { # target include-dir
    clang -target "$1" -ffreestanding -nostdlibinc -isystem "$2" -O0 -S \
        -o - "$here/pfabi.c" |
        awk -v t="$1" '/^(size|off|ioc)__[A-Za-z0-9_]*:/ { name = $1; sub(":", "", name); next }
            name != "" && ($1 == ".quad" || $1 == ".xword") { printf "%s %s %s\n", t, name, $2; name = "" }'
}
for t in x86_64-unknown-openbsd aarch64-unknown-openbsd; do probe "$t" "$1"; done
for t in x86_64-unknown-freebsd14 aarch64-unknown-freebsd14; do probe "$t" "$2"; done

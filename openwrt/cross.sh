#!/usr/bin/env bash
# Static musl release binaries for routers, as OpenWrt runs them: Debian's
# rustc-web and its std sources (no rustup targets), zig from PyPI as the C
# compiler and linker (it bundles musl for every target). For each target:
# the size, whether it is static, `ftp-proxy -h` under qemu-user, and for
# mips, armv7 and aarch64 the unit tests (netlink encoder golden bytes
# included) under qemu-user. Prints a table; exits 1 if a step fails or
# the mips binary is over its budget (512 KiB). Root on Debian/Ubuntu
# (installs what it needs); binaries land in target/cross/.
#
# Size: the release std is rebuilt with `optimize_for_size` and panics
# abort at once (`-Cpanic=immediate-abort`): no panic messages, no
# formatting of them, and no unwinding tables (`-Cforce-unwind-tables=no`:
# nothing unwinds, yet mips kept 29 KB of .eh_frame for it), and no
# source locations for the panic messages there are none of
# (`-Zlocation-detail=none`). The daemon has no panic on any
# input path; a bug that panicked anyway ends the process (procd respawns
# it) without a message. The unit tests are built with a normal std.
set -euo pipefail
cd "$(dirname "$0")/.."

need=(rustc-web rust-web-src qemu-user-static binutils)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "cross.sh: missing ${missing[*]}; run as root to install" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
python3 -m ziglang version >/dev/null 2>&1 || python3 -m pip install -q ziglang

out=$PWD/target/cross
mkdir -p "$out/bin"
# Debian's compiler and std sources; nightly flags (-Z) on a stable compiler.
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
budget=$((512 * 1024))
rows=()
fail=0

# rust target | zig target | qemu | unit tests under qemu
targets=(
    "mips-unknown-linux-musl mips-linux-musleabi qemu-mips-static yes"
    "mipsel-unknown-linux-musl mipsel-linux-musleabi qemu-mipsel-static no"
    "armv7-unknown-linux-musleabihf arm-linux-musleabihf qemu-arm-static yes"
    "aarch64-unknown-linux-musl aarch64-linux-musl qemu-aarch64-static yes"
    "x86_64-unknown-linux-musl x86_64-linux-musl - no"
)

is_static() { readelf -l "$1" 2>/dev/null | grep -q INTERP && echo no || echo yes; }

# Without +crt-static zig makes a static-pie that crashes under qemu;
# without link-self-contained=no rustc looks for its own crt1.o.
base_flags="-C target-feature=+crt-static -C link-self-contained=no"

for row in "${targets[@]}"; do
    set -- $row
    t=$1 zig=$2 qemu=$3 unit=$4
    run=()
    [ "$qemu" = - ] || run=("$qemu")
    env_t=$(echo "$t" | tr 'a-z-' 'A-Z_')
    cc="$out/bin/cc-$zig"
    printf '#!/bin/sh\nexec python3 -m ziglang cc -target %s "$@"\n' "$zig" >"$cc"
    chmod +x "$cc"
    export "CARGO_TARGET_${env_t}_LINKER=$cc"
    [ "$qemu" = - ] || export "CARGO_TARGET_${env_t}_RUNNER=$qemu"
    echo "== $t" >&2
    bin="$out/ftp-proxy-$t"
    size=- static=- help=fail tests=-
    if RUSTFLAGS="$base_flags -Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no -Zlocation-detail=none" \
        cargo build -q --release -Zbuild-std=std,panic_abort \
        -Zbuild-std-features=optimize_for_size --target "$t" --target-dir "$out/build"; then
        cp "$out/build/$t/release/ftp-proxy" "$bin"
        size=$(stat -c %s "$bin") static=$(is_static "$bin")
        "${run[@]}" "$bin" -h 2>/dev/null | grep -q '^usage: ftp-proxy' && help=ok
    fi
    [ "$help" = ok ] && [ "$static" = yes ] || fail=1
    if [ "$unit" = yes ]; then
        # Unit tests: std rebuilt with unwinding and the test harness.
        tests=$(RUSTFLAGS="$base_flags" cargo test -q --lib -Zbuild-std --target "$t" \
            --target-dir "$out/build-test" 2>&1 |
            sed -n 's/^test result: ok\. \([0-9]*\) passed; 0 failed.*/\1 passed/p')
        [ -n "$tests" ] || { tests=FAILED; fail=1; }
    fi
    rows+=("$t $size $static $help $tests")
done

mips=$(stat -c %s "$out/ftp-proxy-mips-unknown-linux-musl" 2>/dev/null || echo 0)
printf '%-32s %9s %7s %5s %s\n' target bytes static -h "unit tests (qemu)"
for r in "${rows[@]}"; do
    set -- $r
    printf '%-32s %9s %7s %5s %s\n' "$1" "$2" "$3" "$4" "${*:5}"
done
if [ "$mips" -gt "$budget" ] || [ "$mips" = 0 ]; then
    echo "mips binary: $mips bytes, budget $budget" >&2
    fail=1
else
    echo "mips binary: $mips bytes of the $budget-byte budget"
fi
exit $fail

#!/usr/bin/env bash
# Static release binaries for routers, built with Debian's rustc-web and
# its std sources (no rustup targets needed), and tested under qemu-user:
#   mips-unknown-linux-gnu (32-bit big-endian), armv7-unknown-linux-gnueabihf,
#   aarch64-unknown-linux-gnu, and a native static x86_64 binary.
# For each: the stripped size, whether it is static, `ftp-proxy -h` under
# qemu, and the unit tests (netlink encoder golden bytes included) under
# qemu. Prints a table; exits 1 if any step fails. Root on Debian/Ubuntu
# (installs what it needs); binaries land in target/cross/.
set -euo pipefail
cd "$(dirname "$0")/.."

need=(rustc-web rust-web-src qemu-user-static binutils
      gcc-mips-linux-gnu libc6-dev-mips-cross
      gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
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

out=target/cross
mkdir -p "$out"
# Debian's compiler and std sources; nightly flags (-Z) on a stable compiler.
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
rows=()
fail=0

# target  gcc-prefix  qemu
targets=(
    "mips-unknown-linux-gnu mips-linux-gnu qemu-mips-static"
    "armv7-unknown-linux-gnueabihf arm-linux-gnueabihf qemu-arm-static"
    "aarch64-unknown-linux-gnu aarch64-linux-gnu qemu-aarch64-static"
)

is_static() { readelf -l "$1" 2>/dev/null | grep -q INTERP && echo no || echo yes; }

for row in "${targets[@]}"; do
    set -- $row
    t=$1 gcc=$2-gcc qemu=$3
    env_t=$(echo "$t" | tr 'a-z-' 'A-Z_')
    export "CARGO_TARGET_${env_t}_LINKER=$gcc" "CARGO_TARGET_${env_t}_RUNNER=$qemu"
    echo "== $t" >&2
    RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release \
        -Zbuild-std=std,panic_abort --target "$t" --target-dir "$out/build"
    bin="$out/ftp-proxy-$t"
    cp "$out/build/$t/release/ftp-proxy" "$bin"
    help=fail
    "$qemu" "$bin" -h | grep -q '^usage: ftp-proxy' && help=ok || fail=1
    # Unit tests: std rebuilt with unwinding and the test harness.
    tests=$(RUSTFLAGS="-C target-feature=+crt-static" cargo test -q --lib \
        -Zbuild-std --target "$t" --target-dir "$out/build" 2>&1 |
        sed -n 's/^test result: ok\. \([0-9]*\) passed; 0 failed.*/\1 passed/p')
    [ -n "$tests" ] || { tests=FAILED; fail=1; }
    rows+=("$t $(stat -c %s "$bin") $(is_static "$bin") $help $tests")
done

# Native x86_64 with the project's own toolchain: static and dynamic.
unset RUSTC RUSTC_BOOTSTRAP
host=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --target "$host" \
    --target-dir "$out/build"
cp "$out/build/$host/release/ftp-proxy" "$out/ftp-proxy-$host-static"
cargo build -q --release --target-dir "$out/build-dyn"
cp "$out/build-dyn/release/ftp-proxy" "$out/ftp-proxy-$host"
for b in "$out/ftp-proxy-$host-static" "$out/ftp-proxy-$host"; do
    help=fail
    "$b" -h | grep -q '^usage: ftp-proxy' && help=ok || fail=1
    rows+=("$(basename "$b" | sed 's/^ftp-proxy-//') $(stat -c %s "$b") $(is_static "$b") $help native-suite")
done

printf '%-36s %10s %7s %5s %s\n' target bytes static -h "unit tests"
for r in "${rows[@]}"; do
    set -- $r
    printf '%-36s %10s %7s %5s %s\n' "$1" "$2" "$3" "$4" "${*:5}"
done
exit $fail

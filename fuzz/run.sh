#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60) from the seeds in seeds/,
# stopping at the first crash (left in fuzz/artifacts/TARGET/).
# Needs cargo-fuzz (.ci/run installs it) and nightly Rust; without a
# nightly toolchain, stable is told to accept nightly flags.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
toolchain=+nightly
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=+stable
    export RUSTC_BOOTSTRAP=1
fi
cargo $toolchain fuzz build -O
for t in framer control replies; do
    mkdir -p "corpus/$t"
    cp -n seeds/$t/* "corpus/$t/" 2>/dev/null || true
    echo "== fuzz $t for ${secs}s"
    cargo $toolchain fuzz run -O "$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len=4096 -print_final_stats=1 2>&1 |
        grep -E 'Done|stat::number_of_executed_units|stat::peak_rss|cov:.*corp|ERROR|panicked|SUMMARY|Test unit written' |
        tail -8
done

#!/usr/bin/env bash
# Full-size load (issue 4): 500 sessions, the maximum, each listing a
# directory on vsftpd again and again, passive and active in turn, for
# SECONDS (default 60). Prints listings per second, the most map elements
# seen, the proxy's peak RSS and CPU time; fails if any listing fails or
# anything is left behind. Root, after lab/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
FTP_PROXY_LOAD=500:$secs cargo test --release --test load -- --nocapture 2>&1 |
    grep -E 'sessions, |panicked|test result'

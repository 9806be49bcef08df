#!/usr/bin/env bash
# Memory and restart check (issue 5): `verdict serve` with 1 M stored verdicts.
#
#   benches/load/rss.sh            # from the repository root; see benches/README.md
#
# Steps (verdict-bench rss): a registry with 10 Notation-signed images and `verdict serve` verifying
# them (10 real verdicts in the store); stop it; verdict-bench-fill adds COUNT copies of a real
# verdict under synthetic subjects (same verdict key, same trust-configuration fingerprint);
# restart `verdict serve` RESTARTS times, timing process start to `/readyz` 200; check that real
# and random synthetic subjects are hits; wrk over random synthetic subjects for SECONDS; report
# VmRSS and VmHWM of the server from /proc/<pid>/status.
#
# Environment: COUNT (1000000), RESTARTS (3), SECONDS_LOAD (30), CONNECTIONS (32),
# KEEP=1 to keep the work directory (the filled store is ~1 GiB), SKIP_BUILD=1,
# SERVE_ARGS (extra `verdict serve` arguments, split on spaces, e.g. "--memory-cache-entries 0").
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
COUNT=${COUNT:-1000000}
RESTARTS=${RESTARTS:-3}
SECONDS_LOAD=${SECONDS_LOAD:-30}
CONNECTIONS=${CONNECTIONS:-32}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/verdict/target}
BIN=$CARGO_TARGET_DIR/release

say() { printf '%s\n' "$*" >&2; }
die() { say "rss.sh: $*"; exit 1; }

if ! command -v wrk >/dev/null; then
    say "# installing wrk (Debian package)"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; } \
        || die "wrk is missing: apt-get install -y wrk"
fi

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    say "# building release binaries"
    (cd "$ROOT" && cargo build --release --locked -p verdict -p verdict-testkit --bins --features verdict-testkit/bench-store)
fi
for b in verdict verdict-bench verdict-bench-fill; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing: cargo build --release -p verdict -p verdict-testkit --bins --features verdict-testkit/bench-store"
done

WORK=$(mktemp -d /tmp/verdict-rss.XXXXXX)
cleanup() { if [[ "${KEEP:-}" == 1 ]]; then say "# work directory kept: $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

say "# uptime: $(uptime)"
SERVE_FLAGS=()
for a in ${SERVE_ARGS:-}; do SERVE_FLAGS+=("--serve-arg=$a"); done
"$BIN/verdict-bench" rss --dir "$WORK" --verdict "$BIN/verdict" --fill "$BIN/verdict-bench-fill" \
    --count "$COUNT" --restarts "$RESTARTS" --seconds "$SECONDS_LOAD" --connections "$CONNECTIONS" \
    --wrk-script "$HERE/random-keys.lua" "${SERVE_FLAGS[@]}" | tee "$WORK/rss.log"

line=$(grep '^RSSRESULT' "$WORK/rss.log") || die "no RSSRESULT line"
field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<"$line"; }
wrk_line=$(grep '^WRKRESULT' "$WORK/rss.log" || true)
rps=$(sed -n 's/.*[ ]rps=\([^ ]*\).*/\1/p' <<<"$wrk_line")
echo
echo "## verdict serve with $(field stored) stored verdicts, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| what | measured | target |"
echo "|---|---|---|"
awk -v r="$(field ready_max_s)" -v all="$(field ready_s)" 'BEGIN { printf "| ready after restart (process start → /readyz 200), worst of %s | %.2f s | ≤ 2 s: %s |\n", all, r, (r <= 2 ? "met" : "MISSED") }'
awk -v m="$(field rss_mib)" -v s="$SECONDS_LOAD" -v h="$(field hits)" -v rps="$rps" 'BEGIN { printf "| VmRSS after %s s of wrk over random stored subjects (%s hits, 0 misses, %s req/s) | %.1f MiB | ≤ 150 MiB: %s |\n", s, h, rps, m, (m <= 150 ? "met" : "MISSED") }'
awk -v m="$(field hwm_mib)" 'BEGIN { printf "| VmHWM (peak RSS) of that server process | %.1f MiB | ≤ 150 MiB: %s |\n", m, (m <= 150 ? "met" : "MISSED") }'
echo "| VmRSS of the same server with 10 stored verdicts (before the fill) | $(field baseline_rss_mib) MiB | — |"

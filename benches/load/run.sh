#!/usr/bin/env bash
# Cache-hit load benchmark (issue 5): `verdict serve` against a bare hyper server that returns the
# same response bytes over the same TLS 1.3 stack, with wrk, alternating in one run.
#
#   benches/load/run.sh            # from the repository root; see benches/README.md
#
# Scenarios: one key per request, and 10-key batches of 10 distinct signed images; every key is a
# digest reference whose verdict is in the store (cache hit). For each scenario and round:
# wrk against the bare server, then against Verdict (bare, verdict, bare, verdict, ...).
#
# Environment: ROUNDS (3), DURATION (15s), CONNECTIONS (32), THREADS (2),
# QUIET_LOAD (1.0: wait until the 1-minute load average is below it), QUIET_WAIT (900 s at most),
# KEEP=1 to keep the work directory, SKIP_BUILD=1 to use the binaries already built.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
QUIET_LOAD=${QUIET_LOAD:-1.0}
QUIET_WAIT=${QUIET_WAIT:-900}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/verdict/target}
BIN=$CARGO_TARGET_DIR/release

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

if ! command -v wrk >/dev/null; then
    say "# installing wrk (Debian package)"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; } \
        || die "wrk is missing: apt-get install -y wrk"
fi
command -v curl >/dev/null || die "curl is missing: apt-get install -y curl"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    say "# building release binaries"
    # The same build as rss.sh (the feature only adds verdict-bench-fill), so neither rebuilds the other's.
    (cd "$ROOT" && cargo build --release --locked -p verdict -p verdict-testkit --bins --features verdict-testkit/bench-store)
fi
for b in verdict verdict-bench bare-tls-server; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing: cargo build --release -p verdict -p verdict-testkit --bins"
done

WORK=$(mktemp -d /tmp/verdict-load.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${KEEP:-}" == 1 ]]; then say "# work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "# registry, 10 signed images, verdict serve, store warmed (work dir $WORK)"
"$BIN/verdict-bench" env --dir "$WORK" --verdict "$BIN/verdict" --images 10 >"$WORK/env.log" 2>&1 &
ENV_PID=$!
PIDS+=("$ENV_PID")
for _ in $(seq 600); do
    [[ -f "$WORK/env.sh" ]] && break
    kill -0 "$ENV_PID" 2>/dev/null || die "verdict-bench env failed: $(cat "$WORK/env.log")"
    sleep 0.5
done
[[ -f "$WORK/env.sh" ]] || die "verdict-bench env not ready after 300 s: $(cat "$WORK/env.log")"
# shellcheck disable=SC1091
source "$WORK/env.sh"
sed 's/^/  /' "$WORK/env.log" >&2

# One bare server per scenario, each answering with the bytes Verdict gave for that request.
declare -A BARE_URL
for n in 1 "$IMAGES"; do
    "$BIN/bare-tls-server" --listen 127.0.0.1:0 --cert "$TLS_CERT" --key "$TLS_KEY" \
        --body "$WORK/answer-$n.json" >"$WORK/bare-$n.log" 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 100); do
        grep -q 'serving https://' "$WORK/bare-$n.log" && break
        sleep 0.1
    done
    addr=$(sed -n 's|.*serving https://\([^ ]*\) .*|\1|p' "$WORK/bare-$n.log")
    [[ -n "$addr" ]] || die "bare-tls-server did not start: $(cat "$WORK/bare-$n.log")"
    BARE_URL[$n]="https://$addr/${VERDICT_URL#https://*/}"
done

# Both answer the benchmark request over TLS 1.3 with the same status and the same bytes.
for n in 1 "$IMAGES"; do
    for side in bare verdict; do
        if [[ $side == bare ]]; then url=${BARE_URL[$n]}; else url=$VERDICT_URL; fi
        info=$(curl -sk -v --tlsv1.3 -o "$WORK/check-$side-$n.json" -w '%{http_code}' \
            -H 'Content-Type: application/json' --data-binary "@$WORK/body-$n.json" "$url" 2>"$WORK/curl-$side-$n.log")
        [[ $info == 200 ]] || die "$side answered $info for body-$n.json"
        grep -q 'SSL connection using TLSv1.3' "$WORK/curl-$side-$n.log" || die "$side did not negotiate TLS 1.3"
    done
    cmp -s "$WORK/check-bare-$n.json" "$WORK/answer-$n.json" || die "bare server bytes differ from Verdict's answer"
    say "# $n key(s): both answer 200 over TLS 1.3; answer $(wc -c <"$WORK/answer-$n.json") bytes (Verdict's now: $(wc -c <"$WORK/check-verdict-$n.json"))"
done

loadavg() { cut -d' ' -f1 /proc/loadavg; }
waited=0
while awk -v l="$(loadavg)" -v q="$QUIET_LOAD" 'BEGIN { exit !(l >= q) }'; do
    if ((waited >= QUIET_WAIT)); then
        say "# WARNING: load average still $(loadavg) after ${QUIET_WAIT}s; measuring anyway"
        break
    fi
    say "# load average $(loadavg) >= $QUIET_LOAD: waiting (${waited}s so far)"
    sleep 30
    waited=$((waited + 30))
done

lookups() { "$BIN/verdict-bench" lookups --ops "$VERDICT_OPS"; }
field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<"$2"; }

RESULTS="$WORK/results.tsv"
printf 'keys\tround\tside\trps\tp50_us\tp99_us\tbytes_per_req\tload\n' >"$RESULTS"
say "# wrk -c $CONNECTIONS -t $THREADS -d $DURATION --latency, $ROUNDS rounds per scenario (uptime: $(uptime))"
for n in 1 "$IMAGES"; do
    for round in $(seq "$ROUNDS"); do
        for side in bare verdict; do
            if [[ $side == bare ]]; then url=${BARE_URL[$n]}; else url=$VERDICT_URL; fi
            [[ $side == verdict ]] && before=$(lookups)
            load=$(loadavg)
            out="$WORK/wrk-$n-$round-$side.txt"
            BENCH_BODY="$WORK/body-$n.json" wrk -c "$CONNECTIONS" -t "$THREADS" -d "$DURATION" --latency \
                -s "$HERE/post.lua" "$url" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
            line=$(grep '^WRKRESULT' "$out") || die "no WRKRESULT in $out"
            for e in err_connect err_read err_write err_status err_timeout; do
                [[ $(field "$e" "$line") == 0 ]] || die "$side: $e=$(field "$e" "$line") in $out"
            done
            requests=$(field requests "$line")
            if [[ $side == verdict ]]; then
                after=$(lookups)
                [[ $(field misses " $before") == $(field misses " $after") ]] || die "verdict missed the cache during the run: $before -> $after"
                hits=$(($(field hits " $after") - $(field hits " $before")))
                ((hits >= requests * n)) || die "verdict: $hits hits for $requests requests of $n keys"
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$round" "$side" "$(field rps "$line")" \
                "$(field p50_us "$line")" "$(field p99_us "$line")" \
                "$(awk -v b="$(field bytes "$line")" -v r="$requests" 'BEGIN { printf "%.0f", b / r }')" "$load" >>"$RESULTS"
            say "  $n key(s) round $round $side: $(field rps "$line") req/s, p50 $(field p50_us "$line") µs, p99 $(field p99_us "$line") µs (load avg before: $load)"
            sleep 2
        done
    done
done

# Every connection to the bare servers was TLS 1.3 (Verdict accepts nothing else).
if grep -h 'connection from' "$WORK"/bare-*.log | grep -v -q 'TLSv1_3'; then
    die "a bare-server connection was not TLS 1.3: $(grep -h 'connection from' "$WORK"/bare-*.log)"
fi

echo
echo "## Cache-hit load benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "wrk -c $CONNECTIONS -t $THREADS -d $DURATION --latency; $ROUNDS rounds, bare then verdict; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); wrk and both servers on the same cores"
echo "TLS: $(grep -h 'connection from' "$WORK"/bare-*.log | sed 's/.*: //' | sort -u | paste -sd';')"
echo
awk -F'\t' -v rounds="$ROUNDS" -v order="1 $IMAGES" '
NR == 1 { next }
{ k = $1; s = $3; rps[k, s] += $4; p99[k, s] += $6; n[k, s]++; keys[k] = 1
  if (s == "bare") { brps[k, $2] = $4; bp99[k, $2] = $6 } else { vrps[k, $2] = $4; vp99[k, $2] = $6 } }
END {
  print "| keys/request | round | bare req/s | verdict req/s | throughput ratio (≥ 0.70) | bare p99 | verdict p99 | p99 ratio (≤ 2.0) |"
  print "|---|---|---|---|---|---|---|---|"
  split(order, ks, " ")
  for (i = 1; i <= 2; i++) {
    k = ks[i]
    for (r = 1; r <= rounds; r++)
      printf "| %s | %d | %.0f | %.0f | %.2f | %.2f ms | %.2f ms | %.2f |\n", k, r, brps[k, r], vrps[k, r], vrps[k, r] / brps[k, r], bp99[k, r] / 1000, vp99[k, r] / 1000, vp99[k, r] / bp99[k, r]
    br = rps[k, "bare"] / n[k, "bare"]; vr = rps[k, "verdict"] / n[k, "verdict"]
    bp = p99[k, "bare"] / n[k, "bare"]; vp = p99[k, "verdict"] / n[k, "verdict"]
    tr = vr / br; pr = vp / bp
    printf "| %s | mean | %.0f | %.0f | **%.2f** %s | %.2f ms | %.2f ms | **%.2f** %s |\n", k, br, vr, tr, (tr >= 0.7 ? "met" : "MISSED"), bp / 1000, vp / 1000, pr, (pr <= 2.0 ? "met" : "MISSED")
  }
}' "$RESULTS"
echo
echo "raw results: $RESULTS (KEEP=1 keeps the work directory)"

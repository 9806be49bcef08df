#!/usr/bin/env bash
# Headline benchmark: Ratify's 2023 AKS load test replayed (benches/README.md, "Headline").
# Builds the release binaries, runs testkit's verdict-bench-storm (warm and cold), and plots the
# latency of every admission request into $OUT/storm-latency.png (matplotlib in a cached venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/verdict/target}
OUT=${OUT:-target/bench-storm}
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release --locked -p verdict -p verdict-testkit --bins --features verdict-testkit/bench-store
fi
T=$CARGO_TARGET_DIR/release
"$T/verdict-bench-storm" --verdict "$T/verdict" --out "$OUT" "$@"
VENV=$HOME/.cache/verdict/venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet matplotlib
fi
"$VENV/bin/python" benches/storm/plot.py "$OUT"

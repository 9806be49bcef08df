#!/usr/bin/env bash
# Prints the tests that skipped themselves during `cargo test` (cargo hides the output of a
# passing test, and a skipped test passes). Each skip is a line `binary<TAB>test<TAB>reason` in a
# file of the directory verdict_testkit::skip writes to; `make unit` empties it before the tests.
# Usage: scripts/skipped-tests.sh DIR     (always exits 0: a skip is reported, not a failure)
set -euo pipefail

dir=${1:?usage: scripts/skipped-tests.sh DIR}
shopt -s nullglob
files=("$dir"/*)
if ((${#files[@]} == 0)); then
  echo "no tests skipped"
  exit 0
fi
# Grouped by reason: the count, then the tests by binary.
sort -u "${files[@]}" | awk -F'\t' '
  {
    n++
    if (!($3 in count)) { order[++reasons] = $3 }
    count[$3]++
    names[$3] = names[$3] "\n    " $1 "::" $2
  }
  END {
    printf "%d test%s skipped:\n", n, (n == 1 ? "" : "s")
    for (i = 1; i <= reasons; i++) {
      r = order[i]
      printf "  %d: %s%s\n", count[r], r, names[r]
    }
  }'

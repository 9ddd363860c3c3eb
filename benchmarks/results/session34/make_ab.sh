#!/usr/bin/env bash
# Builds .ab/ (git-excluded) for session 34's call1.sh t: copies of maskattn/ under names of their own,
# and the branches' tests for package_tests.sh's tests_with.
#   bash benchmarks/results/session34/make_ab.sh
set -euo pipefail
declare -A refs=(
  [maskattn_main]=main
  [maskattn_nt]=s33-nt              # session 33: where_words + the scale fold, no tree reduction
  [maskattn_wide]=s34-wide-packed   # nt + 256-row split-KV items (tree verification)
)
rm -rf .ab && mkdir -p .ab
for name in "${!refs[@]}"; do
  git archive "${refs[$name]}" maskattn | tar -x -C .ab
  mv .ab/maskattn ".ab/$name"
done
for name in maskattn_nt maskattn_wide; do
  mkdir -p .ab/${name}_tests && git archive "${refs[$name]}" tests | tar -x -C .ab/${name}_tests
done
ls .ab

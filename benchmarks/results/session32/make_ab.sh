#!/usr/bin/env bash
# Builds .ab/ (git-excluded) for call1.sh: one copy of maskattn/ per name, from a commit each.
#   bash benchmarks/results/session32/make_ab.sh
set -euo pipefail
declare -A refs=(
  [maskattn_base]=9657aab        # before session 31's K change
  [maskattn_main]=main
  [maskattn_w5]=s31-wide5        # the wide backward at 5 products (merged with main)
  [maskattn_tmax]=5f5a1cf        # the forward's row max as a tree
  [maskattn_tsum]=s32-tree-reduce  # ... and its row sum as a tree
  [maskattn_words]=s32-fwd-words   # ... and partial blocks' bitmap words loaded before the S wait
)
rm -rf .ab && mkdir -p .ab
for name in "${!refs[@]}"; do
  git archive "${refs[$name]}" maskattn | tar -x -C .ab
  mv .ab/maskattn ".ab/$name"
done
# the forward branch's own tests (its test_sm90_common.py needs its package), for call1.sh's tests_with
mkdir -p .ab/maskattn_words_tests && git archive s32-fwd-words tests | tar -x -C .ab/maskattn_words_tests
ls .ab

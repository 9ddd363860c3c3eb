#!/usr/bin/env bash
# Builds .ab/ (git-excluded) for call1.sh: one copy of maskattn/ per name, from a commit each.
#   bash benchmarks/results/session33/make_ab.sh
set -euo pipefail
declare -A refs=(
  [maskattn_main]=main
  [maskattn_w5]=s31-wide5          # the wide backward at 5 products (merged with main)
  [maskattn_tsum]=s32-tree-reduce  # the forward's row max and row sum as trees
  [maskattn_words]=s32-fwd-words   # ... and partial blocks' bitmap words loaded before the S wait
  [maskattn_bits]=s33-bits         # words + w5 + the words applied by sm90_common.where_words
  [maskattn_nt]=s33-nt             # bits without the tree reduction and without w5 (call2.sh)
)
rm -rf .ab && mkdir -p .ab
for name in "${!refs[@]}"; do
  git archive "${refs[$name]}" maskattn | tar -x -C .ab
  mv .ab/maskattn ".ab/$name"
done
# the branch's own tests (its test_sm90_common.py needs its package), for call1.sh's tests_with
mkdir -p .ab/maskattn_bits_tests && git archive s33-bits tests | tar -x -C .ab/maskattn_bits_tests
mkdir -p .ab/maskattn_nt_tests && git archive s33-nt tests | tar -x -C .ab/maskattn_nt_tests
ls .ab

#!/usr/bin/env bash
# Session 20, call 7: the committed backward against session 19's (bwd_head) with GQA (32 query
# heads on 8 KV heads: 4x the tiles per key tile, so documents runs one program per key tile and
# sliding stays persistent), and with 16 heads at causal 16k (one program per key tile).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 AB_ROUNDS=6
AB_HEADS=32:8 AB_CASES="sliding:32768 documents:32768 sliding:8192 causal:8192" timeout 150 python benchmarks/results/session20/ab_bwd.py .dev/bwd_head.py tree 2>&1 | grep -v Warn | tee $OUT/ab_bwd_gqa.log
AB_CASES="causal:16384" timeout 100 python benchmarks/results/session20/ab_bwd.py .dev/bwd_head.py tree 2>&1 | grep -v Warn | tee -a $OUT/ab_bwd_gqa.log

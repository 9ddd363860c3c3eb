#!/usr/bin/env bash
# Session 20, call 3: backward A/B, 8 interleaved rounds: HEAD, the persistent snake grid for
# every map (bwd_snake), plus dK/dV by TMA stores staged in the dS slots and dQ buffer
# (wt_persist), or both through the dQ buffer one after the other (wt_persist_seq); causal 128k.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 AB_ROUNDS=8
export AB_CASES="documents:32768 causal:32768 sliding:32768 documents:8192 sliding:8192 causal:8192 causal:131072"
timeout 300 python benchmarks/results/session20/ab_bwd.py .dev/bwd_head.py .dev/bwd_snake.py .dev/wt_persist.py .dev/wt_persist_seq.py 2>&1 | grep -v Warn | tee $OUT/ab_bwd_epi2.log

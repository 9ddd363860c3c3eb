# session 31, call 4 (main at the merge of s31-kclean; the FA4 chain of call3.sh never got a
# machine, and refused starts left too little device time for it): bench_attention at 8k (every
# family) and 32k (causal, sliding, documents), head dim 128, flex-Triton and SDPA columns (no
# FA4 here); then, time allowing, the causal 32k A/B in reversed order (this tree first). Carry [".ab"].
export PYTHONUNBUFFERED=1 PYTHONPATH=.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 280 python benchmarks/bench_attention.py --sizes 8192 --long 32768 --other-head-dims --no-sweeps \
  --out $OUT/bench 2>&1 | grep -v Warn | tail -40
AB_FIRST=tree CASES="causal:32768:128" AB_ROUNDS=4 \
  timeout 50 python benchmarks/results/session31/ab_trees_bwd.py 2>&1 | grep -v Warn | tee $OUT/ab_kclean_reversed.log

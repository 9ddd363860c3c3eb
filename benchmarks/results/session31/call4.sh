# session 31, call 4 (main at the merge of s31-kclean; the FA4 chain of call3.sh did not get a
# machine, budget too short to retry it): the causal A/B in reversed order (this tree first),
# then bench_attention at 8k / 32k, head dim 128, flex-Triton and SDPA columns (no FA4 here).
# Carry [".ab"].
export PYTHONUNBUFFERED=1 PYTHONPATH=.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
AB_FIRST=tree CASES="causal:32768:128 causal:32768:256" AB_ROUNDS=4 \
  timeout 90 python benchmarks/results/session31/ab_trees_bwd.py 2>&1 | grep -v Warn | tee $OUT/ab_kclean_reversed.log
timeout 360 python benchmarks/bench_attention.py --sizes 8192 32768 --long --other-head-dims --no-sweeps \
  --out $OUT/bench 2>&1 | grep -v Warn | tail -40

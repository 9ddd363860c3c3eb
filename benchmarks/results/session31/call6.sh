# session 31, call 6 (the last ~260 s of device time): bench_attention at 8k for the two families
# whose forward+backward sat at 1.08x flex-Triton against the 1.1x bar (sliding, tree) and causal
# (against SDPA), head dim 128, no FA4, on main with the K change.
export PYTHONUNBUFFERED=1 PYTHONPATH=.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 130 python benchmarks/bench_attention.py --sizes 8192 --long --other-head-dims --no-sweeps \
  --families sliding tree causal --out $OUT/bench 2>&1 | grep -v Warn | tail -30

# session 31, call 5 (what device time was left after refused starts: ~350 s): bench_attention at
# 8k, every family, head dim 128, flex-Triton and SDPA columns (no FA4), on main with the K change.
export PYTHONUNBUFFERED=1 PYTHONPATH=.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python benchmarks/bench_attention.py --sizes 8192 --long --other-head-dims --no-sweeps \
  --out $OUT/bench 2>&1 | grep -v Warn | tail -40

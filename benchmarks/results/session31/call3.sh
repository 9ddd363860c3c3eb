# session 31, call 3 (three calls back to back, main at the merge of s31-kclean):
#   a) carry [".fa4-lib-a", ".ab"]: FA4 library half a, then the causal A/B in reversed order (this tree first)
#   b) carry [".fa4-lib-b"]: half b (joins the library in /tmp/fa4)
#   c) carry [".fa4-py"]: bench_attention at 8k / 32k, head dim 128, every column
export PYTHONUNBUFFERED=1
case "$1" in
  a) bash benchmarks/fa4_parts.sh stage
     AB_FIRST=tree CASES="causal:32768:128 causal:32768:256 causal:8192:128 sliding:32768:128" AB_ROUNDS=5 \
       PYTHONPATH=. timeout 200 python benchmarks/results/session31/ab_trees_bwd.py 2>&1 | grep -v Warn | tee $OUT/ab_kclean_reversed.log ;;
  b) bash benchmarks/fa4_parts.sh stage ;;
  c) source .fa4-py/device.sh; export PYTHONPATH=$PWD:$PYTHONPATH
     nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
     timeout 540 python benchmarks/bench_attention.py --sizes 8192 32768 --long --other-head-dims --no-sweeps \
       --out $OUT/bench 2>&1 | grep -v Warn | tail -30 ;;
esac

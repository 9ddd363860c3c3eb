# session 32, call 1: three calls back to back (the GPU machine keeps /tmp only while warm), main at 5ecd72e.
# .ab (carried in a): maskattn_base = 9657aab's package (before session 31's K change), maskattn_main = main's,
# w5/maskattn = branch s31-wide5's (merged with main):
#   rm -rf .ab && mkdir -p .ab/w5 && git archive 9657aab maskattn | tar -x -C .ab && mv .ab/maskattn .ab/maskattn_base
#   git archive main maskattn | tar -x -C .ab && mv .ab/maskattn .ab/maskattn_main
#   git archive s31-wide5 maskattn | tar -x -C .ab/w5
#   a) carry [".fa4-lib-a", ".ab"]: FA4 library half a; the causal A/B of the K change in reversed order
#      (this tree first); the wide5 branch's GPU tests (wide, and head dims 64 / 128, whose _block_grads
#      it touched; main's tests against the branch's package) and its A/B against main
#   b) carry [".fa4-lib-b"]: half b (joins the library in /tmp/fa4)
#   c) carry [".fa4-py"]: bench_attention at 8k / 32k, head dim 128, every column (`--long` and
#      `--other-head-dims` given no values: no 128k, no other head dims), then bars.py
export PYTHONUNBUFFERED=1
AB=benchmarks/results/session31/ab_trees_bwd.py
case "$1" in
  a) bash benchmarks/fa4_parts.sh stage
     nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
     AB_FIRST=tree CASES="causal:32768:128 causal:32768:256" AB_ROUNDS=4 \
       PYTHONPATH=. timeout 110 python $AB 2>&1 | grep -v Warn | tee $OUT/ab_kclean_reversed.log
     # the branch's package beside main's tests, in a folder of its own (a checkout's maskattn/ would
     # come first on sys.path)
     rm -rf /tmp/w5 && mkdir -p /tmp/w5 && cp -r tests pyproject.toml /tmp/w5/ && cp -r .ab/w5/maskattn /tmp/w5/
     (cd /tmp/w5 && PYTHONPATH=. python -c "import maskattn; print('tests import', maskattn.__file__)")
     (cd /tmp/w5 && PYTHONPATH=. timeout 200 python -m pytest -q -x -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90_wide.py \
       > $OUT/gpu_tests_bwd_wide5.log 2>&1) &
     (cd /tmp/w5 && PYTHONPATH=. timeout 200 python -m pytest -q -x -m gpu -p no:cacheprovider \
       tests/kernels/test_flash_bwd_sm90.py > $OUT/gpu_tests_bwd_w5_d128.log 2>&1) &
     wait
     for f in $OUT/gpu_tests_*.log; do echo $f; grep -E "passed|failed|FAILED|Error" $f | tail -8; done
     PYTHONPATH=. AB_BASE=maskattn_main AB_TREE_DIR=.ab/w5 AB_ROUNDS=3 \
       CASES="causal:32768:256 sliding:32768:256 documents:32768:256 causal:8192:256 causal:8192:192" \
       timeout 130 python $AB 2>&1 | grep -v Warn | tee $OUT/ab_wide5.log ;;
  b) bash benchmarks/fa4_parts.sh stage ;;
  c) source .fa4-py/device.sh; export PYTHONPATH=$PWD:$PYTHONPATH
     nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
     timeout 500 python benchmarks/bench_attention.py --sizes 8192 32768 --long --other-head-dims --no-sweeps \
       --out $OUT/bench 2>&1 | grep -v Warn | tail -30
     python benchmarks/bars.py $OUT/bench/*.json 2>&1 | tail -40 ;;
esac

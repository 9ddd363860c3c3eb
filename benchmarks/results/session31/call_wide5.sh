# Branch s31-wide5 (written in session 31, compiled for sm_90a on the CPU, never run on a GPU): the
# wide backward at 5 products. Before the call, here:
#   rm -rf .ab && mkdir -p .ab && git archive main maskattn | tar -x -C .ab && mv .ab/maskattn .ab/maskattn_base
# then carry [".ab"]: the wide tests (stop at the first failure), the head-dim-64 / 128 tests
# (their _block_grads gained a HALF_Q constexpr; SASS identical), then the A/B against main.
export PYTHONUNBUFFERED=1 PYTHONPATH=.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 250 python -m pytest -q -x -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90_wide.py > $OUT/gpu_tests_bwd_wide5.log 2>&1 &
timeout 250 python -m pytest -q -x -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90.py > $OUT/gpu_tests_bwd.log 2>&1 &
wait
for f in $OUT/gpu_tests_*.log; do echo $f; grep -E "passed|failed|FAILED|Error" $f | tail -8; done
CASES="causal:32768:256 sliding:32768:256 documents:32768:256 causal:8192:256 causal:8192:192" AB_ROUNDS=3 \
  timeout 150 python benchmarks/results/session31/ab_trees_bwd.py 2>&1 | grep -v Warn | tee $OUT/ab_wide5.log

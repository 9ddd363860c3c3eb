# for a later device call on branch s28-bwd-dq-overlap, carry [".ab"]. Before it, on the CPU machine:
#   mkdir -p .ab && git show main:maskattn/kernels/flash_bwd_sm90.py > .ab/bwd_main.py
# The backward GPU tests (both paths, all of test_flash_bwd_sm90.py), then the A/B.
export PYTHONPATH=.
timeout 330 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90.py > $OUT/gpu_tests_dq_overlap.log 2>&1
grep -E "passed|failed|FAILED|Error" $OUT/gpu_tests_dq_overlap.log | tail -8
timeout 240 python benchmarks/results/session28/ab_bwd_dq_overlap.py 2>&1 | grep -v Warn | tee $OUT/ab_bwd_dq_overlap.log

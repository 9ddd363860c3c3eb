# session 21, device call 3: GPU tests of the replayed training plans and the fused preparation
# (for branch session21-plans / session21/plans_untested.diff applied: test_plans.py exists only there)
# launch, then the 8k step A/B (plans on / off in one process; session 20's tree in another)
set -x
export PYTHONPATH=.
timeout 420 python -m pytest -q -x -p no:cacheprovider tests/kernels/test_plans.py tests/kernels/test_flash_bwd_sm90.py \
  tests/kernels/test_backward.py tests/kernels/test_relaunch.py tests/kernels/test_masked_nonfinite.py \
  tests/kernels/test_flash_fwd_sm90_host.py 2>&1 | tail -25 > $OUT/gpu_tests.log
tail -5 $OUT/gpu_tests.log
python benchmarks/results/session21/step_ab.py 2>&1 | tee $OUT/step_ab.log
(cd .dev/head && PYTHONPATH=. python ../../benchmarks/results/session21/step_ab.py 2>&1 | tee $OUT/step_ab_head.log)

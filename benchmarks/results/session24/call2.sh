# session 24, device call 2: A/B of the backward (head / key-major bits / bits + locality lists), then the
# GPU tests of the changed backward (sm90 backward + plans)
export PYTHONPATH=.
timeout 240 python benchmarks/results/session24/ab_bwd.py head=.ab/head_bwd.py bits=.ab/bits_bwd.py tree=tree 2>&1 | tee $OUT/ab_bwd.log | grep -v Warn
timeout 330 python -m pytest -q -x -p no:cacheprovider tests/kernels/test_flash_bwd_sm90.py tests/kernels/test_plans.py \
  2>&1 | tail -15 > $OUT/gpu_tests_bwd.log; tail -4 $OUT/gpu_tests_bwd.log

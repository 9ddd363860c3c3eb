# session 31, call 2 (branch s31-kclean: K's non-finite entries zeroed in shared memory by the
# Hopper backwards instead of a cleaned copy in the preparation launch). Carry [".ab"]:
# .ab/base = s30-operand-descs's maskattn + families (for the "before" profile), .ab/maskattn_base
# the same package renamed for the same-process A/B. Then both Hopper backward test files side by side.
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
R=$PWD
(cd .ab/base && PYTHONPATH=. timeout 100 python $R/benchmarks/results/session30/profile_bwd_parts.py 2>&1 | grep -v Warn | tee $OUT/profile_bwd_parts_base.log)
PYTHONPATH=. timeout 100 python benchmarks/results/session30/profile_bwd_parts.py 2>&1 | grep -v Warn | tee $OUT/profile_bwd_parts_kclean.log
PYTHONPATH=. timeout 130 python benchmarks/results/session31/ab_trees_bwd.py 2>&1 | grep -v Warn | tee $OUT/ab_kclean.log
export PYTHONPATH=.
timeout 250 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90.py > $OUT/gpu_tests_bwd.log 2>&1 &
timeout 250 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90_wide.py > $OUT/gpu_tests_bwd_wide.log 2>&1 &
wait
for f in $OUT/gpu_tests_*.log; do echo $f; grep -E "passed|failed|FAILED|Error" $f | tail -8; done

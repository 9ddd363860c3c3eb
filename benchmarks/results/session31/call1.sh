# session 31, call 1 (branch s30-operand-descs): where the Hopper backward's time goes outside its main
# kernel (profile first, GPU quiet), then both Hopper backward test files, run side by side
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python benchmarks/results/session30/profile_bwd_parts.py 2>&1 | grep -v Warn | tee $OUT/profile_bwd_parts.log
timeout 330 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90.py > $OUT/gpu_tests_bwd.log 2>&1 &
timeout 330 python -m pytest -q -m gpu -p no:cacheprovider tests/kernels/test_flash_bwd_sm90_wide.py > $OUT/gpu_tests_bwd_wide.log 2>&1 &
wait
for f in $OUT/gpu_tests_*.log; do echo $f; grep -E "passed|failed|FAILED|Error" $f | tail -8; done

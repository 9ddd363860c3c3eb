# Session 40, call 2b (carry .ab): the last budget (~120 s of run): the decode A/B on the 64-node tree
# and decode q=1, then as many decode GPU tests as fit.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/gpu.txt
AB_CASES="2 0" AB_ROUNDS=3 PKGS="maskattn_main maskattn" PYTHONPATH=. timeout 50 \
  python benchmarks/results/session40/ab_decode.py > $OUT/ab_decode.log 2>&1
cat $OUT/ab_decode.log
source benchmarks/results/package_tests.sh
CAP_T=100 tests_here gpu_tests_decode.log tests/kernels/test_real_rows.py tests/kernels/test_gpu.py \
  tests/kernels/test_flash_decode_sm90.py tests/kernels/test_relaunch.py tests/kernels/test_gpu_graphs.py \
  -k "real_row or decode or split or graph or relaunch"
tail -n 3 $OUT/gpu_tests_decode.log

# Session 41, call 1 (carry .ab: .ab/maskattn_main = main before real_rows.py and the decode
# kernel's read-ahead tile index): decode GPU tests, the decode A/B main / branch with SDPA, the
# decode configs that the read-ahead double-buffers (3+ stages), the idle-GPU probe of timed
# backward calls, then the inference table.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/gpu.txt
source benchmarks/results/package_tests.sh
CAP_T=100 tests_here gpu_tests_decode.log tests/kernels/test_real_rows.py tests/kernels/test_gpu.py \
  tests/kernels/test_flash_decode_sm90.py tests/kernels/test_relaunch.py tests/kernels/test_gpu_graphs.py \
  tests/kernels/test_forward.py tests/test_paged.py -k "real_row or decode or tree or Decode or split or graph or relaunch or paged"
tail -n 3 $OUT/gpu_tests_decode.log
PKGS="maskattn_main maskattn" PYTHONPATH=. timeout 60 python benchmarks/results/session40/ab_decode.py > $OUT/ab_decode.log 2>&1
cat $OUT/ab_decode.log
CONFIGS="16,128,4,2 16,64,4,3 16,128,4,3 16,64,4,4 16,64,8,3 16,128,8,3" SPLITS="2 4 8" ROUNDS=3 PYTHONPATH=. \
  timeout 130 python benchmarks/results/session40/decode_configs.py > $OUT/decode_configs.log 2>&1
grep -v resources $OUT/decode_configs.log | head -60
PYTHONPATH=. timeout 60 python benchmarks/results/session40/gap_probe.py > $OUT/gap_probe.log 2>&1; cat $OUT/gap_probe.log
mkdir -p $OUT/inf && PYTHONPATH=. timeout 110 python benchmarks/bench_inference.py --out $OUT/inf > $OUT/bench_inference.log 2>&1
tail -12 $OUT/bench_inference.log

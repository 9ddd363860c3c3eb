# session 33, call 2: carry [".ab"] (make_ab.sh's copies plus maskattn_nt = branch s33-nt and its tests
# in .ab/maskattn_nt_tests). GPU tests of nt in three processes (forward / decode / non-finite;
# backwards; the forward's hypothesis cases), each capped at CAP_T s; then the forward A/B main /
# bits / nt and the backward A/B main / nt.
export PYTHONUNBUFFERED=1
AB=benchmarks/results/session32/ab_pkgs.py
source benchmarks/results/package_tests.sh  # tests_with
CAP_T=${CAP_T:-190}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
tests_with maskattn_nt gpu_tests_nt_fwd.log tests/kernels/test_sm90_common.py \
  tests/kernels/test_masked_nonfinite.py tests/kernels/test_flash_decode_sm90.py \
  tests/kernels/test_flash_fwd_sm90.py -k "not random" &
tests_with maskattn_nt gpu_tests_nt_bwd.log tests/kernels/test_flash_bwd_sm90.py \
  tests/kernels/test_flash_bwd_sm90_wide.py &
tests_with maskattn_nt gpu_tests_nt_fwd_random.log tests/kernels/test_flash_fwd_sm90.py -k random &
wait
for f in $OUT/gpu_tests_*.log; do echo $f; tail -3 $f; done
PKGS="maskattn_main maskattn_bits maskattn_nt" PASS=fwd AB_ROUNDS=3 \
  CASES="causal:32768:128 causal:8192:128 sliding:32768:128 documents:32768:128 tree:8192:128" \
  PYTHONPATH=. timeout ${CAP_F:-60} python $AB 2>&1 | grep -v Warn | tee $OUT/ab_fwd_nt.log
PKGS="maskattn_main maskattn_nt" PASS=bwd AB_ROUNDS=3 CASES="sliding:32768:128 documents:32768:128 causal:32768:128" \
  PYTHONPATH=. timeout ${CAP_B:-50} python $AB 2>&1 | grep -v Warn | tee $OUT/ab_bwd_nt.log

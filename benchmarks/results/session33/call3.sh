# session 33, call 3 (the last ~250 s of device time): call2.sh cut down. carry [".ab"].
# GPU tests of maskattn_nt (s33-nt) in three processes capped at CAP_T s, then the forward A/B
# main / nt on three cases.
export PYTHONUNBUFFERED=1
CAP_T=${CAP_T:-110}
source benchmarks/results/package_tests.sh  # tests_with
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
tests_with maskattn_nt gpu_tests_nt_fwd.log tests/kernels/test_sm90_common.py tests/kernels/test_flash_fwd_sm90.py \
  -k "where_words or families or scale or nan or strided or lengths" &
tests_with maskattn_nt gpu_tests_nt_bwd.log tests/kernels/test_flash_bwd_sm90.py &
tests_with maskattn_nt gpu_tests_nt_more.log tests/kernels/test_masked_nonfinite.py \
  tests/kernels/test_flash_decode_sm90.py tests/kernels/test_flash_bwd_sm90_wide.py &
wait
for f in $OUT/gpu_tests_*.log; do echo $f; tail -3 $f; done
PKGS="maskattn_main maskattn_nt" PASS=fwd AB_ROUNDS=3 CASES="causal:32768:128 sliding:32768:128 tree:8192:128" \
  PYTHONPATH=. timeout 35 python benchmarks/results/session32/ab_pkgs.py 2>&1 | grep -v Warn | tee $OUT/ab_fwd_nt.log

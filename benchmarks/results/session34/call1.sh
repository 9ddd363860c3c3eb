# session 34: the calls of the next machine (the GPU machine keeps /tmp only while warm).
#   t) carry [".ab"] (`session34/make_ab.sh`; the first call to make): the GPU tests of s33-nt in
#      three processes and those of s34-wide-packed that its change reaches (split-KV decode,
#      relaunch, graphs) in a fourth, each capped at CAP_T s; the forward and backward A/B main /
#      nt (session 33 measured bits); then tree_rows.py nt / wide.
#   a) carry [".ab", ".fa4-lib-a"]: FA4 library half a staged, then t.
#   b) carry [".fa4-lib-b", ".fa4-py"] (45 MB with the checkout, under the 64 MiB): half b joins
#      the library, then session 32's call1.sh c (bench_attention 8k / 32k, every column; bars.py).
export PYTHONUNBUFFERED=1
tests_and_ab() {
  source benchmarks/results/package_tests.sh  # tests_with
  local ab=benchmarks/results/session32/ab_pkgs.py
  export CAP_T=${CAP_T:-230}
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  tests_with maskattn_nt gpu_tests_nt_fwd.log tests/kernels/test_sm90_common.py \
    tests/kernels/test_masked_nonfinite.py tests/kernels/test_flash_decode_sm90.py \
    tests/kernels/test_flash_fwd_sm90.py -k "not random" &
  tests_with maskattn_nt gpu_tests_nt_bwd.log tests/kernels/test_flash_bwd_sm90.py \
    tests/kernels/test_flash_bwd_sm90_wide.py &
  tests_with maskattn_nt gpu_tests_nt_fwd_random.log tests/kernels/test_flash_fwd_sm90.py -k random &
  tests_with maskattn_wide gpu_tests_wide.log tests/kernels/test_flash_decode_sm90.py \
    tests/kernels/test_relaunch.py tests/kernels/test_gpu_graphs.py &
  wait
  for f in $OUT/gpu_tests_*.log; do echo $f; tail -3 $f; done
  PKGS="maskattn_main maskattn_nt" PASS=fwd AB_ROUNDS=3 \
    CASES="causal:32768:128 causal:8192:128 sliding:32768:128 documents:32768:128 tree:8192:128" \
    PYTHONPATH=. timeout 50 python $ab 2>&1 | grep -v Warn | tee $OUT/ab_fwd_nt.log
  PKGS="maskattn_main maskattn_nt" PASS=bwd AB_ROUNDS=3 CASES="sliding:32768:128 documents:32768:128" \
    PYTHONPATH=. timeout 35 python $ab 2>&1 | grep -v Warn | tee $OUT/ab_bwd_nt.log
  PKGS="maskattn_nt maskattn_wide" PYTHONPATH=. timeout 60 python benchmarks/results/session34/tree_rows.py 2>&1 \
    | grep -v Warn | tee $OUT/tree_rows.log
}
case "$1" in
  t) tests_and_ab ;;
  a) bash benchmarks/fa4_parts.sh stage && tests_and_ab ;;
  b) bash benchmarks/fa4_parts.sh stage && bash benchmarks/results/session32/call1.sh c ;;
esac

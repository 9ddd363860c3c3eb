# Session 36, first call (carry [".ab", ".fa4-lib-a"], ~450 s). Before it, here: the working tree holds
# `session35/wide_packed_untested.diff` (256-row packed items); `session35/make_ab.sh` made
# .ab/maskattn_main (main), and .ab/maskattn_loops is the working tree plus `session36/fwd_two_loops.diff`
# (the forward's key blocks in two loops),
# .ab/maskattn_lazy that plus `session36/fwd_lazy_rescale.diff` (wide items rescale O only when a max grew > 2^8). It stages FA4's half a, runs the GPU tests of the wide items
# (this checkout) and of the two loops (maskattn_loops) in parallel, then tree_rows main / wide, then the
# forward A/B main / loops (both orders on causal 32k). Right after, warm: session35/bench.sh with carry
# [".fa4-lib-b", ".fa4-py"].
export PYTHONUNBUFFERED=1
bash benchmarks/fa4_parts.sh stage
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
source benchmarks/results/package_tests.sh  # tests_here, tests_with
export CAP_T=${CAP_T:-220}
tests_here gpu_tests_decode_wide.log tests/kernels/test_flash_decode_sm90.py tests/kernels/test_relaunch.py \
  tests/kernels/test_gpu_graphs.py &
tests_here gpu_tests_fwd_rows.log tests/kernels/test_flash_fwd_sm90.py -k "not random" &
tests_with maskattn_loops gpu_tests_fwd_loops.log tests/kernels/test_flash_fwd_sm90.py \
  tests/kernels/test_sm90_common.py tests/kernels/test_masked_nonfinite.py &
tests_with maskattn_lazy gpu_tests_decode_lazy.log tests/kernels/test_flash_decode_sm90.py tests/kernels/test_relaunch.py &
wait
for f in $OUT/gpu_tests_*.log; do echo "$f: $(grep -E 'passed|failed|error' $f | tail -1)"; grep -E "^FAILED|^E " $f | head -8; done
ln -sfn "$PWD/maskattn" .ab/maskattn_wide
PKGS="maskattn_main maskattn_wide maskattn_loops maskattn_lazy" PYTHONPATH=. timeout 120 python benchmarks/results/session34/tree_rows.py 2>&1 \
  | grep -v Warn | tee $OUT/tree_rows_wide.log
AB=benchmarks/results/session32/ab_pkgs.py
PKGS="maskattn_main maskattn_loops" PASS=fwd AB_ROUNDS=3 \
  CASES="causal:32768:128 sliding:32768:128 documents:32768:128 causal:8192:128 sliding:8192:128 tree:8192:128" \
  PYTHONPATH=. timeout 100 python $AB 2>&1 | grep -v Warn | tee $OUT/ab_fwd_loops.log
PKGS="maskattn_loops maskattn_main" PASS=fwd AB_ROUNDS=3 CASES="causal:32768:128 documents:32768:128" \
  PYTHONPATH=. timeout 50 python $AB 2>&1 | grep -v Warn | tee $OUT/ab_fwd_loops_reversed.log

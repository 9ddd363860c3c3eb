# session 35: the re-written where_words + scale fold (the working tree's maskattn, copied to
# .ab/maskattn_nt by `NT=1 session35/make_ab.sh`; carry [".ab"]) on a GPU: its GPU tests in six
# processes (capped at CAP_T s), then the forward and backward A/B main / nt.
# With carry [".ab", ".fa4-lib-a"] it first stages half a of FA4's library (for bench.sh, the next call).
export PYTHONUNBUFFERED=1
[ -d .fa4-lib-a ] && bash benchmarks/fa4_parts.sh stage
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
source benchmarks/results/package_tests.sh  # tests_here
export CAP_T=${CAP_T:-230}
tests_here gpu_tests_fwd.log tests/kernels/test_sm90_common.py tests/kernels/test_flash_fwd_sm90.py -k "not random" &
tests_here gpu_tests_fwd_random.log tests/kernels/test_flash_fwd_sm90.py -k random &
tests_here gpu_tests_decode.log tests/kernels/test_flash_decode_sm90.py &
tests_here gpu_tests_nonfinite.log tests/kernels/test_masked_nonfinite.py &
tests_here gpu_tests_bwd.log tests/kernels/test_flash_bwd_sm90.py &
tests_here gpu_tests_bwd_wide.log tests/kernels/test_flash_bwd_sm90_wide.py &
wait
for f in $OUT/gpu_tests_*.log; do echo "$f: $(grep -E 'passed|failed|error' $f | tail -1)"; grep -E "^FAILED|^E " $f | head -8; done
AB=benchmarks/results/session32/ab_pkgs.py
PKGS="maskattn_main maskattn_nt" PASS=fwd AB_ROUNDS=3 \
  CASES="causal:32768:128 sliding:32768:128 documents:32768:128 tree:8192:128" \
  PYTHONPATH=. timeout 55 python $AB 2>&1 | grep -v Warn | tee $OUT/ab_fwd_nt.log
PKGS="maskattn_main maskattn_nt" PASS=bwd AB_ROUNDS=3 CASES="sliding:32768:128" \
  PYTHONPATH=. timeout 30 python $AB 2>&1 | grep -v Warn | tee $OUT/ab_bwd_nt.log
# session 34's question on main: tree verification at equal K / V bytes, one 128-row item per KV head
# against two (the standard 64-node tree)
PYTHONPATH=. timeout 60 python benchmarks/results/session34/tree_rows.py 2>&1 | grep -v Warn | tee $OUT/tree_rows.log

# Tree verification's 256-row packed items (`session35/wide_packed_untested.diff`) on a GPU. Before the
# call, here: `git apply benchmarks/results/session35/wide_packed_untested.diff` (the working tree then
# holds the change) and `bash benchmarks/results/session35/make_ab.sh` (.ab/maskattn_main = main
# without it); carry [".ab"]. ~330 s: the GPU tests the change reaches (split-KV decode, relaunch,
# CUDA graphs, the forward's non-random tests for the ROWS constexpr), then tree_rows.py main / wide.
# Merge only if the tests pass and tree_rows shows the 256-row packing faster.
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
source benchmarks/results/package_tests.sh  # tests_here
export CAP_T=${CAP_T:-230}
tests_here gpu_tests_decode_wide.log tests/kernels/test_flash_decode_sm90.py tests/kernels/test_relaunch.py \
  tests/kernels/test_gpu_graphs.py &
tests_here gpu_tests_fwd_rows.log tests/kernels/test_flash_fwd_sm90.py -k "not random" &
wait
for f in $OUT/gpu_tests_*.log; do echo "$f: $(grep -E 'passed|failed|error' $f | tail -1)"; grep -E "^FAILED|^E " $f | head -8; done
ln -sfn "$PWD/maskattn" .ab/maskattn_wide
PKGS="maskattn_main maskattn_wide" PYTHONPATH=. timeout 80 python benchmarks/results/session34/tree_rows.py 2>&1 \
  | grep -v Warn | tee $OUT/tree_rows_wide.log

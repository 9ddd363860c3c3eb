# Session 37, call 1 (carry [".ab", ".fa4-lib-a"]; `git archive HEAD maskattn` unpacked as .ab/maskattn_main;
# with .fa4-lib-a, FA4's library half a is staged first for bench.sh, the next call): the cut
# key tiles of the Hopper backward (split_columns) on a GPU. Its GPU tests (backward, wide backward,
# plans) in three processes, then the A/B portable / whole / cut on the column-bound maps, then main
# against the working tree on maps whose launches are not cut (their kernel's SASS moved by a few
# instructions: 6632 -> 6624 at head dim 128).
export PYTHONUNBUFFERED=1
[ -d .fa4-lib-a ] && bash benchmarks/fa4_parts.sh stage
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
source benchmarks/results/package_tests.sh  # tests_here
CAP_T=${CAP_T:-240} tests_here gpu_tests_bwd.log tests/kernels/test_flash_bwd_sm90.py &
CAP_T=${CAP_T:-240} tests_here gpu_tests_bwd_wide.log tests/kernels/test_flash_bwd_sm90_wide.py &
CAP_T=${CAP_T:-240} tests_here gpu_tests_plans.log tests/kernels/test_plans.py tests/kernels/test_split_columns.py &
wait
for f in $OUT/gpu_tests_*.log; do echo "$f: $(grep -E 'passed|failed|error' $f | tail -1)"; grep -E "^FAILED|^E " $f | head -8; done
# bench.sh benchmarks the working tree only if every test process passed in full
if ! grep -qE "failed|error" $OUT/gpu_tests_*.log && [ "$(grep -lE '[0-9]+ passed' $OUT/gpu_tests_*.log | wc -l)" = 3 ]; then
  touch /tmp/s37_cut_ok
fi
PYTHONPATH=. timeout 150 python benchmarks/results/session37/bwd_column_bound.py 2>&1 | grep -v Warn | tee $OUT/ab_bwd_cut.log
PKGS="maskattn_main maskattn" PASS=bwd AB_ROUNDS=3 CASES="sliding:32768:128 documents:32768:128 causal:8192:128" \
  PYTHONPATH=. timeout 60 python benchmarks/results/session32/ab_pkgs.py 2>&1 | grep -v Warn | tee $OUT/ab_bwd_whole.log

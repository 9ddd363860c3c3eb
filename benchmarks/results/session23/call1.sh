# session 23, device call 1: A/B of the backward's balanced work lists, then the GPU tests of the
# changed backward and the decode / graph tests owed since session 22 (decode plans moved onto plans.py)
export PYTHONPATH=.
nvidia-smi --query-gpu=name --format=csv,noheader; python -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 150 python benchmarks/results/session23/ab_lists.py 2>&1 | tee $OUT/ab_lists.log
timeout 200 python -m pytest -q -x -p no:cacheprovider tests/kernels/test_flash_bwd_sm90.py tests/kernels/test_plans.py \
  2>&1 | tail -15 > $OUT/gpu_tests_bwd.log; tail -3 $OUT/gpu_tests_bwd.log
timeout 170 python -m pytest -q -x -p no:cacheprovider tests/kernels/test_flash_decode_sm90.py tests/kernels/test_gpu_graphs.py \
  2>&1 | tail -15 > $OUT/gpu_tests_decode.log; tail -3 $OUT/gpu_tests_decode.log

# session 23, device call 5: after the review's work_lists mend (snake lists' pointers by searchsorted): plans
# (incl. graph capture on snake lists), dispatch (one item per program) and CUDA-graph tests
export PYTHONPATH=.; timeout 170 python -m pytest -q -x -p no:cacheprovider tests/kernels/test_plans.py "tests/kernels/test_flash_bwd_sm90.py::test_dispatch" tests/kernels/test_gpu_graphs.py 2>&1 | tail -3 | tee $OUT/gpu_tests_review.log

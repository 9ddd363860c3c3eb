# session 23, device call 4: after the host-side caching of one-item-per-program lists: plans, persistent-grid,
# dispatch and CUDA-graph tests
export PYTHONPATH=.; timeout 200 python -m pytest -q -x -p no:cacheprovider tests/kernels/test_plans.py "tests/kernels/test_flash_bwd_sm90.py::test_persistent_grid_many_items_per_program" "tests/kernels/test_flash_bwd_sm90.py::test_dispatch" tests/kernels/test_gpu_graphs.py 2>&1 | tail -4 | tee $OUT/gpu_tests_final.log

# session 22, device call 4: decode GPU tests (decode plans moved onto plans.py), then the 8k rows
# of bench_attention (fwd and fwd+bwd against flex-Triton and SDPA, same process)
export PYTHONPATH=.
timeout 150 python -m pytest -q -x -p no:cacheprovider tests/kernels/test_flash_decode_sm90.py tests/kernels/test_gpu_graphs.py \
  2>&1 | tail -15 > $OUT/gpu_tests_decode.log
tail -3 $OUT/gpu_tests_decode.log
timeout 300 python benchmarks/bench_attention.py --sizes 8192 --long --other-head-dims --no-sweeps --out $OUT 2>&1 | tail -40 | tee $OUT/bench8k.log

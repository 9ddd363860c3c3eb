# session 25's plan, call 3 (carry [".fa4-py"], right after call 2): the attention benchmark with FA4 /
# flex-FLASH columns at 8k and 32k, five families, head dim 128, after the forward's locality lists
# (merged if call 1 passed) and session 24's backward. Predictions: documents 32k fwd+bwd ~3.0-3.4 ms
# (fwd 0.65-0.8, bwd ~2.7; >= 1.0x flex-FA4's 325 TF/s), sliding 32k ~2.7 ms (~0.83x flex-FA4)
source .fa4-py/device.sh
export PYTHONPATH=$PWD:$PYTHONPATH PYTHONUNBUFFERED=1
timeout 560 python benchmarks/bench_attention.py --sizes 8192 32768 --long --other-head-dims --no-sweeps --out $OUT 2>&1 | grep -v Warn | tail -60 | tee $OUT/bench_attention.log

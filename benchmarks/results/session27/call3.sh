# NOT RUN in session 27: no machine could be started for it (five attempts); for a later session.
# session 27, call 3 (carry [".fa4-py"], right after call 2): the forward alone at 128k (causal, sliding,
# documents) and at 32k with head dims 64 and 256, FA4 / flex-FLASH columns (issue 8 asks for both)
source .fa4-py/device.sh
export PYTHONPATH=$PWD:$PYTHONPATH PYTHONUNBUFFERED=1
timeout 560 python benchmarks/bench_attention.py --sizes --long 131072 --other-head-dims 64 256 --no-sweeps \
  --forward-only --out $OUT 2>&1 | grep -v Warn | tee $OUT/bench_attention_fwd_long.log | tail -40

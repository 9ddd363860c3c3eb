# session 23, device call 3 (warm machine, right after call 2): the 32k rows of sliding and documents
export PYTHONPATH=.; mkdir -p $OUT/bench; timeout 280 python benchmarks/bench_attention.py --sizes 32768 --long --other-head-dims --no-sweeps --families sliding documents --out $OUT/bench 2>&1 | tail -30 | tee $OUT/bench32k.log

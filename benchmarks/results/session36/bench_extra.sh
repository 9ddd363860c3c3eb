# Session 36, after bench.sh while the machine is warm (FA4's library still in /tmp/fa4; carry [".fa4-py", ".ab"]):
# the forward alone at 128k (causal, sliding, documents, head dim 128) and at 32k with head dims 64 / 256,
# every column (issue 8: "no family slower than today at 128k", D=64 and 256 reported).
# PKG as in bench.sh.
set -e
if [ -n "${PKG:-}" ]; then rm -rf maskattn && cp -r .ab/$PKG maskattn; echo "benchmarking .ab/$PKG"; fi
source .fa4-py/device.sh; export PYTHONPATH=$PWD:$PYTHONPATH
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 540 python benchmarks/bench_attention.py --sizes --long 131072 --other-head-dims 64 256 --no-sweeps \
  --forward-only --out $OUT/bench_extra 2>&1 | grep -v Warn | tail -30

#!/usr/bin/env bash
# Session 46's changes on the GPU, first call (~250 s): the compile paths of sessions 45-46 (written
# on the CPU, never run on CUDA): the unmasked op (and its causal rows), kv_start / kv_end rows, the
# static-cache step in a CUDA graph, static-cache generate compiled by transformers (one graph),
# then the causal-rows A/B against main's map path (decode q=4, B=8, 32k).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv > $OUT/gpu.txt
python -c "import torch, triton, transformers; print(torch.__version__, triton.__version__, transformers.__version__)" >> $OUT/gpu.txt
timeout 170 python -m pytest -q -p no:cacheprovider tests/kernels/test_unmasked_decode.py tests/test_paged.py \
  tests/integrations/test_transformers.py \
  -k "unmasked or cut_at or checked or compiled or static or registration or growing or graph or decodes_without or causal_rows or replay or strided or sync or pages" \
  > $OUT/compile_paths_tests.log 2>&1; echo "tests rc=$?"; tail -6 $OUT/compile_paths_tests.log
timeout 80 python benchmarks/results/session46/causal_rows_ab.py > $OUT/causal_rows_ab.log 2>&1; echo "ab rc=$?"; tail -12 $OUT/causal_rows_ab.log

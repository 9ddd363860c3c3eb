#!/usr/bin/env bash
# Session 20, call 6: host time of the 8k training calls (host_train_8k.py).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 200 python benchmarks/results/session20/host_train_8k.py 2>&1 | grep -v Warn | tee $OUT/host_train_8k.log

"""Session 37: the backward of maps that ``flash_bwd_sm90.column_bound`` sends to the portable kernels
(tree and Longformer at 8k / 32k: a shared trunk or global keys that every query tile sees) run on
the Hopper one-pass kernel instead, against the portable two-kernel path, same process, interleaved
(``ab.backward_on_off``; B=1, H=16 (or ``HQ`` / ``HKV`` for GQA), bf16). The rule dates from the
H200 of session 9 (0.72-0.76x); the kernel has changed a great deal since."""
import os

import torch

from benchmarks import ab
from maskattn.kernels import flash_bwd_sm90

ab.print_setup("bwd portable vs Hopper on column-bound maps")
flash_bwd_sm90.column_bound = lambda *args: False  # what supported() asks: force the Hopper kernel
ab.backward_on_off(flash_bwd_sm90, ab.env_cases(
    "tree:8192:128 longformer:8192:128 tree:32768:128 longformer:32768:128 causal:8192:128"),
    int(os.environ.get("AB_ROUNDS", "5")))

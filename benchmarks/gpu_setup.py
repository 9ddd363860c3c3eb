"""Shared GPU benchmark setup: FlexAttention compiled with raised recompile limits, and a timer."""
from __future__ import annotations

import sys

import torch


def raise_recompile_limits(recompiles: int = 1000) -> None:
    """Dynamo's recompile limits raised to ``recompiles``: past the default 8 recompiles of one
    frame (flex per shape; a static-cache ``generate`` per attention implementation, all in one
    process) the frame runs eager from then on, and the timings would compare eager to compiled."""
    import torch._dynamo as dynamo
    dynamo.config.cache_size_limit = recompiles
    if hasattr(dynamo.config, "recompile_limit"):
        dynamo.config.recompile_limit = recompiles


def flex_and_timer(script: str, recompiles: int = 1000):
    """(compiled flex_attention, create_block_mask, bench(fn) -> median ms). Exits with a message
    without CUDA. Dynamo's limits are raised: flex falls back to eager after 8 recompiles, and
    flex compiles once per shape (``dynamic=False``)."""
    if not torch.cuda.is_available():
        sys.exit(f"{script} needs a CUDA GPU")
    import triton.testing
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    raise_recompile_limits(recompiles)
    bench = lambda fn: float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))  # noqa: E731
    # static shapes: with dynamic=None the second shape recompiles as a slower dynamic-shape kernel
    return torch.compile(flex_attention, dynamic=False), create_block_mask, bench

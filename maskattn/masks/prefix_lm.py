"""``prefix_lm(prefix_len)``: bidirectional over a prefix, causal after it: ``j < P or j <= i``."""
from __future__ import annotations

import torch

from .band import causal
from .base import Mask, Named
from .checks import as_index_tensor, describe, nonneg_int
from .positions import KeyPrefix


def prefix_lm(prefix_len) -> Mask:
    """``prefix_len``: an int, or a (B,) int tensor with one prefix length per batch row."""
    if isinstance(prefix_len, torch.Tensor) and prefix_len.dim() == 1:
        length = as_index_tensor("prefix_lm: prefix_len", prefix_len, (1,))
        if length.numel() and int(length.min()) < 0:
            raise ValueError(f"prefix_lm: prefix_len must be non-negative, got {int(length.min())}")
        shown = describe(prefix_len)
    else:
        length = nonneg_int("prefix_lm: prefix_len", prefix_len)
        shown = str(length)
    name = f"prefix_lm({shown})"
    return Named(KeyPrefix(length, name) | causal(), name)

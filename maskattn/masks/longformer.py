"""``longformer(window, global_tokens)``: local band ``|i - j| <= window`` plus symmetric
global tokens (a global token attends to every key; every query attends to it)."""
from __future__ import annotations

import torch

from .band import Band
from .base import Mask, Named
from .checks import as_bool_tensor, as_index_tensor, describe, nonneg_int
from .positions import PositionSet


def longformer(window: int, global_tokens) -> Mask:
    """``window``: keys within ``window`` positions on either side.
    ``global_tokens``: list / 1-D int tensor of positions, or bool tensor ``(L,)`` or ``(B, L)``."""
    window = nonneg_int("longformer: window", window)
    if isinstance(global_tokens, torch.Tensor) and global_tokens.dtype == torch.bool:
        flags = as_bool_tensor("longformer: global_tokens", global_tokens, (1, 2))
        flags = flags[None] if flags.dim() == 1 else flags
        shown, kw = describe(global_tokens), {"flags": flags}
    else:
        pos = as_index_tensor("longformer: global_tokens", global_tokens, (1,))
        if pos.numel() and int(pos.min()) < 0:
            raise ValueError(f"longformer: global_tokens must be non-negative positions, got {int(pos.min())}")
        pos = torch.unique(pos)
        shown = str(pos.tolist()) if pos.numel() <= 8 else f"<{pos.numel()} positions>"
        kw = {"positions": pos, "max_position": int(pos[-1]) if pos.numel() else None}  # unique() sorts
    name = f"longformer({window}, {shown})"
    band = Band(window, window, f"sliding_window({window}, {window})")
    inner = band | PositionSet("q", name, arg="global_tokens", **kw) | PositionSet("k", name, arg="global_tokens", **kw)
    return Named(inner, name)

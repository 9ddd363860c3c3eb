"""``from_function(fn)``: any rule written as a function of (batch row, head, query, key)."""
from __future__ import annotations

import torch

from .base import Mask
from .grid import PARTIAL


class FromFunction(Mask):
    def __init__(self, fn, batch: int, heads: int, name: str):
        self.fn, self._batch, self._heads, self.name = fn, batch, heads, name

    def _allowed(self, b, h, i, j, q_offset):
        out = self.fn(b, h, i, j)
        if not isinstance(out, torch.Tensor) or out.dtype != torch.bool:
            got = out.dtype if isinstance(out, torch.Tensor) else type(out).__name__
            raise TypeError(f"from_function: {self.name} must return a bool tensor, got {got}")
        shape = torch.broadcast_shapes(b.shape, h.shape, i.shape, j.shape)
        return out.expand(shape) if out.shape != shape else out

    def _tile_classes(self, grid):
        # nothing is known about the rule: every tile is a candidate; the compiler evaluates
        # them in bounded chunks and keeps the exact classes
        return torch.full((1, 1, grid.n_q_tiles, grid.n_k_tiles), PARTIAL, dtype=torch.int8, device=grid.device)

    def __repr__(self):
        return f"from_function({self.name})"


def from_function(fn, *, batch: int = 1, heads: int = 1, name: str | None = None) -> Mask:
    """``fn(b, h, i, j)``: broadcastable int64 tensors of batch row, head, absolute query and key
    position -> bool tensor, True = attend. ``batch`` / ``heads``: how many batch rows / heads
    the rule tells apart (1: it ignores that index). ``compile_mask`` evaluates it tile by tile
    in bounded memory (never an Lq x Lk tensor; O(Lq * Lk) evaluations). With ``Lq == Lk`` and
    ``q_offset = 0`` this is exactly a FlexAttention ``mask_mod``: flex masks work unchanged.
    Pickles when ``fn`` is a module-level function."""
    if not callable(fn):
        raise TypeError(f"from_function: fn: expected a callable, got {type(fn).__name__}")
    for arg, v in (("batch", batch), ("heads", heads)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"from_function: {arg}: expected a positive int, got {v!r}")
    return FromFunction(fn, batch, heads, name or getattr(fn, "__name__", "fn"))

"""Band masks: ``causal()`` and ``sliding_window(left, right=0)``: ``i - left <= j <= i + right``."""
from __future__ import annotations

import torch

from .base import Mask
from .checks import nonneg_int
from .grid import TileGrid, classes_from


class Band(Mask):
    """``i - left <= j <= i + right``; ``None`` leaves that side unbounded."""

    def __init__(self, left: int | None, right: int | None, name: str):
        self.left, self.right, self.name = left, right, name

    def _allowed(self, b, h, i, j, q_offset):
        ok = torch.ones(torch.broadcast_shapes(i.shape, j.shape), dtype=torch.bool, device=i.device)
        if self.left is not None:
            ok = ok & (j >= i - self.left)
        if self.right is not None:
            ok = ok & (j <= i + self.right)
        return ok

    def _tile_classes(self, grid: TileGrid):
        i_lo, i_hi = grid.q_bounds()
        j_lo, j_hi = grid.k_bounds()
        full = torch.ones((grid.n_q_tiles, grid.n_k_tiles), dtype=torch.bool, device=grid.device)
        empty = torch.zeros_like(full)
        if self.left is not None:  # every pair has j >= i - left / some pair does
            full = full & (j_lo >= i_hi - self.left)
            empty = empty | (j_hi < i_lo - self.left)
        if self.right is not None:
            full = full & (j_hi <= i_lo + self.right)
            empty = empty | (j_lo > i_hi + self.right)
        return classes_from(full, empty)[None, None]

    def __repr__(self):
        return self.name


def causal() -> Mask:
    """``j <= i``: each query sees itself and earlier positions."""
    return Band(None, 0, "causal()")


def sliding_window(left: int, right: int = 0) -> Mask:
    """``i - left <= j <= i + right`` (FlashAttention's ``window_size``).

    A Hugging Face ``sliding_window=W`` (W keys including the query) is ``sliding_window(W - 1)``.
    """
    left = nonneg_int("sliding_window: left", left)
    right = nonneg_int("sliding_window: right", right)
    name = f"sliding_window({left})" if right == 0 else f"sliding_window({left}, {right})"
    return Band(left, right, name)

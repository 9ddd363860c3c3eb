"""Band masks: ``causal()`` and ``sliding_window(left, right=0)``: ``i - left <= j <= i + right``."""
from __future__ import annotations

import torch

from .base import Mask, Named
from .checks import MAX_WINDOW, nonneg_int
from .grid import FULL, PARTIAL, TileGrid, tile_class


class Band(Mask):
    """``i - left <= j <= i + right``; ``None`` leaves that side unbounded. Windows are capped
    at ``MAX_WINDOW`` (wider than any two positions are apart), so arithmetic cannot overflow."""

    def __init__(self, left: int | None, right: int | None, name: str):
        self.left, self.right, self.name = _cap(left), _cap(right), name

    def _allowed(self, b, h, i, j, q_offset):
        # compare differences j - i (|j - i| < 2**62 + L), never i +- window, which can overflow
        left, right = self.left, self.right
        d = j - i if (left or right) else None  # windows of 0 (causal) compare positions directly
        ok = None
        if left is not None:
            ok = j >= i if left == 0 else d >= -left
        if right is not None:
            below = j <= i if right == 0 else d <= right
            ok = below if ok is None else ok & below
        if ok is None:
            return torch.ones(torch.broadcast_shapes(i.shape, j.shape), dtype=torch.bool, device=i.device)
        return ok

    def _tile_classes(self, grid: TileGrid):
        # tile (qt, kt) holds j - i in [d - (bq - 1), d + (bk - 1)], d = its first key minus its
        # first query position; whole tiles are assumed, conservative for a ragged last one
        bq, bk = grid.block_q, grid.block_k
        i0 = torch.arange(grid.q_offset, grid.q_offset + grid.n_q_tiles * bq, bq, device=grid.device)
        j0 = torch.arange(0, grid.n_k_tiles * bk, bk, device=grid.device)
        d = j0[None, :] - i0[:, None]
        some = every = None  # some pair of the tile is inside the band / every pair is
        if self.left is not None:  # j - i >= -left
            some, every = d >= -self.left - (bk - 1), d >= -self.left + (bq - 1)
        if self.right is not None:  # j - i <= right
            s, e = d <= self.right + (bq - 1), d <= self.right - (bk - 1)
            some, every = (s, e) if some is None else (some & s, every & e)
        if some is None:
            return torch.full((1, 1, grid.n_q_tiles, grid.n_k_tiles), FULL, dtype=torch.int8, device=grid.device)
        return tile_class(some, every)[None, None]

    def _every_pair(self, q_len, kv_len, q_offset):
        # query i in [q_offset, q_offset + q_len - 1], key j in [0, kv_len - 1]: j - i spans
        # [-(q_offset + q_len - 1), kv_len - 1 - q_offset]
        return ((self.left is None or q_offset + q_len - 1 <= self.left)
                and (self.right is None or kv_len - 1 - q_offset <= self.right))

    def _causal_end(self, q_len, kv_len, q_offset):
        # rows see [0, i + right + 1) when the left edge is behind key 0 for the last row
        # (i = q_offset + q_len - 1); the last row's end must not pass kv_len
        if self.right is None or self.right < 0 or q_offset < 0:
            return None
        if self.left is not None and q_offset + q_len - 1 > self.left:
            return None
        end = q_offset + q_len + self.right
        return end if end <= kv_len else None

    def __repr__(self):
        return self.name


def _cap(window: int | None) -> int | None:
    return None if window is None else max(-MAX_WINDOW, min(window, MAX_WINDOW))


def causal() -> Mask:
    """``j <= i``: each query sees itself and earlier positions."""
    return Band(None, 0, "causal()")


class Dilated(Mask):
    """``(i - j) % dilation == 0``: every ``dilation``-th key. Never FULL (a tile holds at
    least two consecutive keys or queries), never EMPTY; ANDed with a band it thins the band."""

    def __init__(self, dilation: int):
        self.dilation = dilation

    def _allowed(self, b, h, i, j, q_offset):
        return torch.remainder(i - j, self.dilation) == 0

    def _tile_classes(self, grid: TileGrid):
        one_pair = grid.block_q == 1 and grid.block_k == 1  # never: block_q >= 16
        return torch.full((1, 1, 1, 1), FULL if one_pair else PARTIAL, dtype=torch.int8, device=grid.device)

    def __repr__(self):
        return f"dilation({self.dilation})"


def sliding_window(left: int, right: int = 0, dilation: int = 1) -> Mask:
    """``i - left <= j <= i + right`` (FlashAttention's ``window_size``), and with ``dilation > 1``
    also ``(i - j) % dilation == 0`` (a dilated window: every ``dilation``-th key).

    A Hugging Face ``sliding_window=W`` (W keys including the query) is ``sliding_window(W - 1)``.
    Any window of at least ``3 * 2**61`` (e.g. ``sys.maxsize``) is unbounded on that side.
    """
    left = nonneg_int("sliding_window: left", left)
    right = nonneg_int("sliding_window: right", right)
    dilation = nonneg_int("sliding_window: dilation", dilation)
    if dilation < 1:
        raise ValueError(f"sliding_window: dilation: expected an int >= 1, got {dilation}")
    name = f"sliding_window({left})" if right == 0 else f"sliding_window({left}, {right})"
    if dilation == 1:
        return Band(left, right, name)
    name = name[:-1] + f", dilation={dilation})"
    return Named(Band(left, right, name) & Dilated(dilation), name)

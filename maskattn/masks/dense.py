"""``dense(mask)``: an arbitrary boolean mask given element by element, indexed by
(query row, key column) — not by absolute position."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Mask
from .checks import as_bool_tensor, batch_row, describe
from .grid import TileGrid, tile_class


class Dense(Mask):
    def __init__(self, mask: torch.Tensor):
        self.mask = mask  # (B|1, H|1, Lq, Lk)
        self._batch, self._heads = mask.shape[0], mask.shape[1]

    def _tensors(self):
        return [self.mask]

    def _moved(self, device):
        return self if self.mask.device == device else Dense(self.mask.to(device))

    def _check_lengths(self, q_len, kv_len, q_offset):
        if tuple(self.mask.shape[-2:]) != (q_len, kv_len):
            raise ValueError(f"dense: mask has shape (Lq, Lk) = {tuple(self.mask.shape[-2:])}, "
                             f"but attention has q_len={q_len}, kv_len={kv_len}")

    def _allowed(self, b, h, i, j, q_offset):
        m, r, c = self.mask, i - q_offset, j  # back from positions to (row, column)
        hh = h if m.shape[1] > 1 else torch.zeros_like(h)
        inside = (r >= 0) & (r < m.shape[2]) & (c >= 0) & (c < m.shape[3])
        return m[batch_row(m, b), hh, r.clamp(0, m.shape[2] - 1), c.clamp(0, m.shape[3] - 1)] & inside

    def _tile_classes(self, grid: TileGrid):
        m = self.mask
        pq = grid.n_q_tiles * grid.block_q - grid.q_len
        pk = grid.n_k_tiles * grid.block_k - grid.kv_len
        shape = (m.shape[0], m.shape[1], grid.n_q_tiles, grid.block_q, grid.n_k_tiles, grid.block_k)
        # padding outside the grid must not spoil 'all' (pad True) nor 'any' (pad False)
        any_ = F.pad(m, (0, pk, 0, pq), value=False).view(shape).any(5).any(3)
        all_ = F.pad(m, (0, pk, 0, pq), value=True).view(shape).all(5).all(3)
        return tile_class(any_, all_)

    def __repr__(self):
        return f"dense({describe(self.mask)})"


def dense(mask) -> Mask:
    """``mask``: bool tensor ``(Lq, Lk)``, ``(B, Lq, Lk)`` or ``(B, H, Lq, Lk)``; True = attend.
    The mask takes a snapshot (a copy) of the tensor: later in-place edits of ``mask`` do not
    change it (nor the BlockMaps compiled from it)."""
    m = as_bool_tensor("dense: mask", mask, (2, 3, 4))
    if m is mask:  # as_bool_tensor made no copy (integer masks are converted, i.e. copied)
        m = m.clone()
    if m.dim() == 2:
        m = m[None, None]
    elif m.dim() == 3:
        m = m[:, None]
    return Dense(m)

"""``full()``: every query attends to every key."""
from __future__ import annotations

import torch

from .base import Mask
from .grid import FULL


class Full(Mask):
    def _allowed(self, b, h, i, j, q_offset):
        return torch.ones(torch.broadcast_shapes(b.shape, h.shape, i.shape, j.shape), dtype=torch.bool, device=i.device)

    def _tile_classes(self, grid):
        return torch.full((1, 1, grid.n_q_tiles, grid.n_k_tiles), FULL, dtype=torch.int8, device=grid.device)

    def _every_pair(self, q_len, kv_len, q_offset):
        return True

    def __repr__(self):
        return "full()"


def full() -> Mask:
    return Full()

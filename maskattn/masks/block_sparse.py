"""``block_sparse(layout, block_q, block_k)``: attention allowed block by block (the
block-sparse attention of the FlashAttention paper, BigBird's random blocks, top-k blocks)."""
from __future__ import annotations

import torch

from .base import Mask
from .checks import as_bool_tensor, batch_row, describe
from .grid import TileGrid, tile_class


class BlockSparse(Mask):
    """``(i, j)`` allowed iff ``layout[b, h, i // block_q, j // block_k]``; positions outside the
    layout are not allowed. ``layout``: (B|1, H|1, nq, nk) bool."""

    def __init__(self, layout: torch.Tensor, block_q: int, block_k: int, name: str):
        self.layout, self.block_q, self.block_k, self.name = layout, block_q, block_k, name
        self._batch, self._heads = layout.shape[0], layout.shape[1]
        # integral image: sums[..., r, c] = number of allowed blocks in rows < r, columns < c
        counts = layout.to(torch.int32).cumsum(2).cumsum(3)
        self._sums = torch.nn.functional.pad(counts, (1, 0, 1, 0))

    def _tensors(self):
        return [self.layout]

    def _moved(self, device):
        return self if self.layout.device == device else BlockSparse(self.layout.to(device), self.block_q,
                                                                     self.block_k, self.name)

    def _allowed(self, b, h, i, j, q_offset):
        lay = self.layout
        nq, nk = lay.shape[2], lay.shape[3]
        r, c = torch.div(i, self.block_q, rounding_mode="floor"), torch.div(j, self.block_k, rounding_mode="floor")
        inside = (r >= 0) & (r < nq) & (c >= 0) & (c < nk)
        hh = h if lay.shape[1] > 1 else torch.zeros_like(h)
        return lay[batch_row(lay, b), hh, r.clamp(0, nq - 1), c.clamp(0, nk - 1)] & inside

    def _tile_classes(self, grid: TileGrid):
        nq, nk = self.layout.shape[2], self.layout.shape[3]
        dev = grid.device
        i0 = torch.arange(grid.n_q_tiles, device=dev) * grid.block_q + grid.q_offset  # first query position
        i1 = torch.clamp(i0 + grid.block_q, max=grid.q_offset + grid.q_len) - 1  # last one
        j0 = torch.arange(grid.n_k_tiles, device=dev) * grid.block_k
        j1 = torch.clamp(j0 + grid.block_k, max=grid.kv_len) - 1
        # block rows / columns a tile touches, clipped to the layout; positions outside it count as not allowed
        r0 = torch.div(i0, self.block_q, rounding_mode="floor").clamp(0, nq)
        r1 = (torch.div(i1, self.block_q, rounding_mode="floor") + 1).clamp(0, nq)
        c0 = torch.div(j0, self.block_k, rounding_mode="floor").clamp(0, nk)
        c1 = (torch.div(j1, self.block_k, rounding_mode="floor") + 1).clamp(0, nk)
        s = self._sums
        area = lambda a0, a1, b0, b1: (s[:, :, a1[:, None], b1[None, :]] - s[:, :, a0[:, None], b1[None, :]]  # noqa: E731
                                       - s[:, :, a1[:, None], b0[None, :]] + s[:, :, a0[:, None], b0[None, :]])
        allowed = area(r0, r1, c0, c1)  # allowed blocks the tile touches
        whole = ((i0 >= 0) & (i1 < nq * self.block_q))[:, None] & ((j1 < nk * self.block_k))[None, :]
        touched = ((r1 - r0)[:, None] * (c1 - c0)[None, :])
        return tile_class(allowed > 0, (allowed == touched) & whole & (touched > 0))

    def __repr__(self):
        return self.name


def block_sparse(layout, block_q: int, block_k: int) -> Mask:
    """``layout``: bool (or 0/1) tensor ``(nq, nk)``, ``(B, nq, nk)`` or ``(B|1, H|1, nq, nk)``;
    ``(i, j)`` (absolute positions) is allowed iff ``layout[..., i // block_q, j // block_k]``.
    Positions outside the layout are not allowed. Block sizes are any positive ints; they need
    not match the kernels' tiles (tile classes stay exact)."""
    for name, v in (("block_q", block_q), ("block_k", block_k)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"block_sparse: {name}: expected a positive int, got {type(v).__name__}")
        if v < 1:
            raise ValueError(f"block_sparse: {name}: expected a positive int, got {v}")
    lay = as_bool_tensor("block_sparse: layout", layout, (2, 3, 4)).clone()  # a snapshot, like dense()
    lay = lay[None, None] if lay.dim() == 2 else lay[:, None] if lay.dim() == 3 else lay
    return BlockSparse(lay.contiguous(), block_q, block_k, f"block_sparse({describe(lay)}, {block_q}, {block_k})")

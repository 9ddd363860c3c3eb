"""Tile geometry shared by every mask's tile classifier.

A ``TileGrid`` describes how a (Lq, Lk) score matrix is cut into tiles of
``block_q x block_k`` and where each tile sits in absolute positions
(query row ``r`` is position ``q_offset + r``, key column ``c`` is position ``c``).
Everything here is O(number of tiles) or O(L); nothing is O(Lq * Lk).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# Tile classes, ordered so that ``&`` is ``min``, ``|`` is ``max`` and ``~`` is ``2 - x``.
EMPTY, PARTIAL, FULL = 0, 1, 2


@dataclass(frozen=True)
class TileGrid:
    q_len: int
    kv_len: int
    q_offset: int
    block_q: int
    block_k: int
    device: torch.device

    @property
    def n_q_tiles(self) -> int:
        return -(-self.q_len // self.block_q)

    @property
    def n_k_tiles(self) -> int:
        return -(-self.kv_len // self.block_k)

    # ---- tile bounds in absolute positions (inclusive), shaped to broadcast to (Tq, Tk)
    def q_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lowest and highest absolute query position of each query tile: (Tq, 1) int64 each."""
        start = torch.arange(self.n_q_tiles, device=self.device) * self.block_q
        end = torch.clamp(start + self.block_q, max=self.q_len) - 1
        return (start + self.q_offset)[:, None], (end + self.q_offset)[:, None]

    def k_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lowest and highest key position of each key tile: (1, Tk) int64 each."""
        start = torch.arange(self.n_k_tiles, device=self.device) * self.block_k
        end = torch.clamp(start + self.block_k, max=self.kv_len) - 1
        return start[None, :], end[None, :]

    # ---- per-position vectors reduced tile by tile (O(L))
    def q_positions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Absolute positions of the padded query axis (Tq*block_q,) and whether each is a real row."""
        r = torch.arange(self.n_q_tiles * self.block_q, device=self.device)
        return r + self.q_offset, r < self.q_len

    def k_positions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions of the padded key axis (Tk*block_k,) and whether each is a real column."""
        c = torch.arange(self.n_k_tiles * self.block_k, device=self.device)
        return c, c < self.kv_len


def gather_positions(values: torch.Tensor, pos: torch.Tensor, fill) -> torch.Tensor:
    """values: (B, L) indexed by absolute position; pos: (N,) -> (B, N), ``fill`` outside [0, L)."""
    length = values.shape[-1]
    inside = (pos >= 0) & (pos < length)
    out = values[:, pos.clamp(0, max(length - 1, 0))]
    return torch.where(inside, out, torch.as_tensor(fill, dtype=values.dtype, device=values.device))


def tile_any_all(flags: torch.Tensor, valid: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """flags: (B, T*block) bool, valid: (T*block,) -> (any, all) over the valid entries, each (B, T)."""
    b = flags.shape[0]
    f = flags.reshape(b, -1, block)
    v = valid.reshape(1, -1, block)
    return (f & v).any(-1), (f | ~v).all(-1)


def tile_min_max(values: torch.Tensor, valid: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """values: (B, T*block) int64 -> (min, max) over the valid entries, each (B, T)."""
    b = values.shape[0]
    x = values.reshape(b, -1, block)
    v = valid.reshape(1, -1, block)
    big = torch.iinfo(torch.int64).max
    lo = torch.where(v, x, big).amin(-1)
    hi = torch.where(v, x, -big).amax(-1)
    return lo, hi


def classes_from(full: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    """Tile classes (int8) from boolean 'certainly full' and 'certainly empty' tensors."""
    out = torch.full(torch.broadcast_shapes(full.shape, empty.shape), PARTIAL, dtype=torch.int8, device=full.device)
    out = torch.where(full, torch.tensor(FULL, dtype=torch.int8, device=full.device), out)
    return torch.where(empty, torch.tensor(EMPTY, dtype=torch.int8, device=full.device), out)

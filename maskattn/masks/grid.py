"""Tile geometry shared by every mask's tile classifier.

A ``TileGrid`` describes how a (Lq, Lk) score matrix is cut into tiles of
``block_q x block_k`` and where each tile sits in absolute positions
(query row ``r`` is position ``q_offset + r``, key column ``c`` is position ``c``).
Everything here is O(number of tiles) or O(L); nothing is O(Lq * Lk).

On a GPU every tensor operation is a kernel launch, so the helpers below aim at few
operations: slices and views where possible, one ``aminmax`` per reduction.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

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

    def k_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lowest and highest key position of each key tile: (1, Tk) int64 each."""
        lo = torch.arange(0, self.n_k_tiles * self.block_k, self.block_k, device=self.device)
        hi = lo + (self.block_k - 1)
        if self.kv_len % self.block_k:  # the last tile is cut short
            hi.clamp_(max=self.kv_len - 1)
        return lo[None, :], hi[None, :]

    # ---- per-position vectors cut tile by tile (O(L))
    def tile_values(self, values: torch.Tensor, axis: str, fill, start: int = 0) -> torch.Tensor:
        """``values`` (B, N) holds one entry per position ``start .. start + N - 1``. Returns
        (B, T, block): the entries at the positions of each query tile's rows (``axis='q'``) or
        key tile's columns (``'k'``); positions without an entry read ``fill``. The padding
        rows / columns past Lq / Lk repeat the last real one, so a per-tile min, max, any or
        all sees exactly the real rows / columns."""
        if axis == "q":
            first, length, n_tiles, block = self.q_offset - start, self.q_len, self.n_q_tiles, self.block_q
        else:
            first, length, n_tiles, block = -start, self.kv_len, self.n_k_tiles, self.block_k
        nb, n = values.shape
        lo, hi = max(first, 0), min(first + length, n)  # the part of [first, first + length) with entries
        if lo >= hi:
            return values.new_full((nb, n_tiles, block), fill)
        x = values[:, lo:hi]  # usually the whole answer: a view, no copy
        if lo - first or first + length - hi:
            x = F.pad(x, (lo - first, first + length - hi), value=fill)
        if n_tiles * block > length:
            x = torch.cat((x, x[:, -1:].expand(nb, n_tiles * block - length)), 1)
        return x.reshape(nb, n_tiles, block)


def tile_class(some: torch.Tensor, every: torch.Tensor) -> torch.Tensor:
    """Tile classes (int8) from bool tensors 'some pair allowed' and 'every pair allowed'
    (``every`` must imply ``some``; a violation reads as PARTIAL, which is always safe)."""
    return some.to(torch.int8) + every


def any_all_class(flags: torch.Tensor) -> torch.Tensor:
    """(..., block) bool -> (...) int8 tile class: EMPTY if no flag is set, FULL if all are."""
    lo, hi = torch.aminmax(flags.view(torch.uint8), dim=-1)  # all, any as 0 / 1
    return (lo + hi).view(torch.int8)


def with_fill(values: torch.Tensor, fill) -> torch.Tensor:
    """(B, N) -> (B, N + 1): ``values`` and one ``fill`` entry after them, the table ``lookup`` reads."""
    return F.pad(values, (0, 1), value=fill)


def lookup(table: torch.Tensor, pos: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """Entries of a ``with_fill`` table (B|1, N + 1) at positions ``pos``, batch rows ``b``
    (unused for a one-row table). Positions outside [0, N) read the fill: they clamp to -1
    or N, and index -1 wraps around to entry N."""
    idx = lookup_index(table, pos)
    return table[0][idx] if table.shape[0] == 1 or b is None else table[b, idx]


def lookup_index(table: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """The index ``lookup`` reads ``table`` at: positions clamped to [-1, N]."""
    return pos.clamp(-1, table.shape[-1] - 1)

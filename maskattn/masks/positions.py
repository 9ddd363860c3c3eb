"""Masks that depend on one axis only: a set of query rows or key columns
(global tokens, padding), and keys before a boundary (prefix-LM)."""
from __future__ import annotations

import torch

from .base import Mask
from .checks import batch_row, describe
from .grid import EMPTY, FULL, PARTIAL, TileGrid, classes_from, gather_positions, tile_any_all


class PositionSet(Mask):
    """Allows every pair whose query position (``axis='q'``) or key position (``axis='k'``)
    is in a set, given as ``flags`` (B|1, L) bool indexed by absolute position, or as a
    1-D tensor of ``positions`` (the bool vector is then built at compile time).
    ``arg``: the factory argument the set came from, named in error messages."""

    def __init__(self, axis: str, name: str, flags: torch.Tensor | None = None, positions: torch.Tensor | None = None,
                 arg: str = "positions"):
        self.axis, self.name, self.flags, self.positions, self.arg = axis, name, flags, positions, arg
        self._batch = flags.shape[0] if flags is not None else 1

    def _tensors(self):
        return [t for t in (self.flags, self.positions) if t is not None]

    def _moved(self, device):
        mv = lambda t: None if t is None else t.to(device)
        return PositionSet(self.axis, self.name, mv(self.flags), mv(self.positions), self.arg)

    def _check_lengths(self, q_len, kv_len, q_offset):
        if self.flags is not None and self.flags.shape[-1] != kv_len:
            raise ValueError(f"{self.name}: {self.arg} covers {self.flags.shape[-1]} positions but kv_len is {kv_len}")
        if self.positions is not None and self.positions.numel() and int(self.positions.max()) >= kv_len:
            raise ValueError(f"{self.name}: {self.arg} position {int(self.positions.max())} is out of range "
                             f"for kv_len {kv_len}")

    def _flags(self, length: int, device) -> torch.Tensor:
        if self.flags is not None:
            return self.flags
        f = torch.zeros(1, length, dtype=torch.bool, device=device)
        f[0, self.positions] = True
        return f

    def _allowed(self, b, h, i, j, q_offset):
        pos = i if self.axis == "q" else j
        if self.flags is None:
            return torch.isin(pos, self.positions)
        inside = (pos >= 0) & (pos < self.flags.shape[-1])
        return self.flags[batch_row(self.flags, b), pos.clamp(0, self.flags.shape[-1] - 1)] & inside

    def _tile_classes(self, grid: TileGrid):
        flags = self._flags(grid.kv_len, grid.device)
        if self.axis == "q":
            pos, valid = grid.q_positions()
            block = grid.block_q
        else:
            pos, valid = grid.k_positions()
            block = grid.block_k
        any_, all_ = tile_any_all(gather_positions(flags, pos, False), valid, block)
        cls = classes_from(all_, ~any_)  # (B, T)
        return cls[:, None, :, None] if self.axis == "q" else cls[:, None, None, :]

    def __repr__(self):
        return self.name


class KeyPrefix(Mask):
    """``j < length`` (``length`` an int or a (B,) tensor, one per batch row)."""

    def __init__(self, length, name: str):
        self.length, self.name = length, name
        self._batch = length.shape[0] if isinstance(length, torch.Tensor) else 1

    def _tensors(self):
        return [self.length] if isinstance(self.length, torch.Tensor) else []

    def _moved(self, device):
        if isinstance(self.length, torch.Tensor):
            return KeyPrefix(self.length.to(device), self.name)
        return self

    def _bound(self, b):
        if isinstance(self.length, torch.Tensor):
            return self.length[batch_row(self.length, b)]
        return self.length

    def _allowed(self, b, h, i, j, q_offset):
        return j < self._bound(b)

    def _tile_classes(self, grid: TileGrid):
        j_lo, j_hi = grid.k_bounds()  # (1, Tk)
        if isinstance(self.length, torch.Tensor):
            n = self.length.view(-1, 1)
            return classes_from(j_hi < n, j_lo >= n)[:, None, None, :]
        return classes_from(j_hi < self.length, j_lo >= self.length)[None, None]

    def __repr__(self):
        return self.name


__all__ = ["PositionSet", "KeyPrefix", "EMPTY", "PARTIAL", "FULL", "describe"]

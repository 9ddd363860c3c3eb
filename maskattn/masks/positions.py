"""Masks that depend on one axis only: a set of query rows or key columns
(global tokens, padding), and keys before a boundary (prefix-LM)."""
from __future__ import annotations

import torch

from .base import Mask
from .grid import TileGrid, any_all_class, lookup, tile_class, with_fill


class PositionSet(Mask):
    """Allows every pair whose query position (``axis='q'``) or key position (``axis='k'``)
    is in a set, given as ``flags`` (B|1, L) bool indexed by absolute position, or as a
    1-D tensor of ``positions``. ``arg``: the factory argument the set came from, named in
    error messages. ``max_position``: ``int(positions.max())`` if the caller knows it."""

    def __init__(self, axis: str, name: str, flags: torch.Tensor | None = None, positions: torch.Tensor | None = None,
                 arg: str = "positions", max_position: int | None = None):
        self.axis, self.name, self.flags, self.positions, self.arg = axis, name, flags, positions, arg
        self._batch = flags.shape[0] if flags is not None else 1
        if flags is None:
            if positions.numel() and max_position is None:
                max_position = int(positions.max())
            # positions as flags over 0 .. max_position: every later position is outside the set
            flags = torch.zeros(1, 0 if max_position is None else max_position + 1, dtype=torch.bool,
                                device=positions.device)
            flags[0, positions] = True
        self.max_position = max_position
        # built once here, not at every compile; positions past the flags read False
        self._table = with_fill(flags, False)

    def _tensors(self):
        return [t for t in (self.flags, self.positions) if t is not None]

    def _moved(self, device):
        if all(t.device == device for t in self._tensors()):
            return self
        mv = lambda t: None if t is None else t.to(device)
        return PositionSet(self.axis, self.name, mv(self.flags), mv(self.positions), self.arg, self.max_position)

    def _check_lengths(self, q_len, kv_len, q_offset):
        if self.flags is not None and self.flags.shape[-1] != kv_len:
            raise ValueError(f"{self.name}: {self.arg} covers {self.flags.shape[-1]} positions but kv_len is {kv_len}")
        if self.max_position is not None and self.max_position >= kv_len:
            raise ValueError(f"{self.name}: {self.arg} position {self.max_position} is out of range "
                             f"for kv_len {kv_len}")

    def _allowed(self, b, h, i, j, q_offset):
        return lookup(self._table, i if self.axis == "q" else j, b)

    def _tile_classes(self, grid: TileGrid):
        flags = self._table[:, :-1]
        cls = any_all_class(grid.tile_values(flags, self.axis, False))  # (B, T)
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
        if isinstance(self.length, torch.Tensor) and self.length.device != device:
            return KeyPrefix(self.length.to(device), self.name)
        return self

    def _allowed(self, b, h, i, j, q_offset):
        if isinstance(self.length, torch.Tensor):
            return j < (self.length[b] if self.length.shape[0] > 1 else self.length[0])
        return j < self.length

    def _tile_classes(self, grid: TileGrid):
        j_lo, j_hi = grid.k_bounds()  # (1, Tk)
        if isinstance(self.length, torch.Tensor):
            n = self.length.view(-1, 1)
            return tile_class(j_lo < n, j_hi < n)[:, None, None, :]
        return tile_class(j_lo < self.length, j_hi < self.length)[None, None]

    def __repr__(self):
        return self.name




def query_mask(valid) -> Mask:
    """``valid``: bool or 0/1 tensor ``(L,)`` or ``(B, L)`` over absolute query positions
    ``0 .. L-1`` (L = kv_len, like ``padding``): a query whose position is not valid (or lies
    outside the tensor) attends to nothing. The query-side counterpart of ``padding``; with
    ``&`` / ``|`` it selects the queries a rule applies to, e.g.
    ``query_mask(is_text) & causal() | ~query_mask(is_text) & image_rule``."""
    from .checks import as_bool_tensor, describe

    flags = as_bool_tensor("query_mask: valid", valid, (1, 2))
    flags = flags[None] if flags.dim() == 1 else flags
    return PositionSet("q", f"query_mask({describe(flags)})", flags=flags, arg="valid")

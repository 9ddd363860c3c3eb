"""``per_head(masks)`` and ``per_batch(masks)``: a different mask for each query head or batch row.

Each distinct mask object is evaluated once (its tile classes and elements are computed over
the whole grid and gathered by index), however many heads or rows share it: DuoAttention's
two kinds of heads cost two masks, not Hq.
"""
from __future__ import annotations

import torch

from .base import Mask, _broadcast_dim


class Select(Mask):
    """Index ``h`` (``axis='head'``) or ``b`` (``axis='batch'``) uses ``masks[index]``."""

    def __init__(self, axis: str, masks: list[Mask], name: str):
        self.axis, self.masks, self.name = axis, list(masks), name
        # distinct masks (by identity) and, per entry, which one it is
        self.distinct, slots = [], {}
        self.which = []
        for m in self.masks:
            if id(m) not in slots:
                slots[id(m)] = len(self.distinct)
                self.distinct.append(m)
            self.which.append(slots[id(m)])
        other = [m.batch_size if axis == "head" else m.num_heads for m in self.distinct]
        own = [m.num_heads if axis == "head" else m.batch_size for m in self.distinct]
        if any(n != 1 for n in own):
            raise ValueError(f"{name}: its masks must not themselves differ per {axis}")
        if axis == "head":
            self._heads, self._batch = len(self.masks), _broadcast_dim(other, "batch size", self)
        else:
            self._batch, self._heads = len(self.masks), _broadcast_dim(other, "head count", self)

    def _children(self):
        return tuple(self.distinct)

    def _moved(self, device):
        moved = {id(m): m._moved(device) for m in self.distinct}
        return Select(self.axis, [moved[id(m)] for m in self.masks], self.name)

    def _index(self, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.which, device=like.device)

    def _allowed(self, b, h, i, j, q_offset):
        idx = self._index(i)[h if self.axis == "head" else b]  # which distinct mask, per element
        out = None
        for k, m in enumerate(self.distinct):
            val = m._allowed(b, h, i, j, q_offset)
            out = val & (idx == k) if out is None else torch.where(idx == k, val, out)
        return out

    def _tile_classes(self, grid):
        shape = (self._batch if self.axis == "head" else 1, 1, grid.n_q_tiles, grid.n_k_tiles)
        classes = torch.stack([m._tile_classes(grid).expand(shape) for m in self.distinct])  # (K, B|1, 1, Tq, Tk)
        picked = classes[self._index(classes)]  # (n, B|1, 1, Tq, Tk)
        if self.axis == "head":
            return picked[:, :, 0].transpose(0, 1)  # (B|1, Hq, Tq, Tk)
        return picked[:, 0]  # (B, 1, Tq, Tk)

    def __repr__(self):
        return self.name


def _select(axis: str, masks, fn: str) -> Mask:
    if isinstance(masks, Mask) or not isinstance(masks, (list, tuple)):
        raise TypeError(f"{fn}: masks: expected a list of maskattn masks, got {type(masks).__name__}")
    if not masks:
        raise ValueError(f"{fn}: masks: expected at least one mask, got an empty list")
    for n, m in enumerate(masks):
        if not isinstance(m, Mask):
            raise TypeError(f"{fn}: masks[{n}]: expected a maskattn Mask, got {type(m).__name__}")
    distinct = list({id(m): m for m in masks}.values())
    shown = ", ".join(repr(m) for m in distinct[:3]) + (", ..." if len(distinct) > 3 else "")
    return Select(axis, masks, f"{fn}(<{len(masks)} masks, {len(distinct)} distinct: {shown}>)")


def per_head(masks) -> Mask:
    """``masks``: a list of Hq masks; query head ``h`` uses ``masks[h]`` (the list length must
    equal q's number of heads). Repeated mask objects are compiled once."""
    return _select("head", masks, "per_head")


def per_batch(masks) -> Mask:
    """``masks``: a list of B masks; batch row ``b`` uses ``masks[b]`` (the list length must
    equal q's batch size). Repeated mask objects are compiled once."""
    return _select("batch", masks, "per_batch")

"""The ``Mask`` base class and its algebra (``&``, ``|``, ``~``).

A mask answers "may query position ``i`` attend to key position ``j``?" in absolute
positions (query row ``r`` sits at ``i = q_offset + r``, key column ``c`` at ``j = c``;
default ``q_offset = Lk - Lq``). Every mask knows two things:

* ``_allowed(b, h, i, j, q_offset)``: the element rule on broadcastable int64 index
  tensors (batch row, head, query position, key position) -> bool. Used inside partial
  tiles and by ``materialize()``; ``q_offset`` matters only to masks indexed by row
  rather than by position (``dense``).
* ``_tile_classes(grid)``: EMPTY / PARTIAL / FULL for every tile, shape broadcastable
  to ``(B|1, H|1, Tq, Tk)``, computed from the mask's parameters in O(tiles) work.
  PARTIAL may be conservative (the compiler demotes tiles whose bits turn out all-0
  or all-1); FULL and EMPTY must be exact.
"""
from __future__ import annotations

import torch

from .grid import TileGrid


class Mask:
    """Base class of every mask. Build masks with the factories (``causal()``, ...)
    and combine them with ``&``, ``|`` and ``~``."""

    # ---- to be provided by subclasses -------------------------------------------------
    def _allowed(self, b: torch.Tensor, h: torch.Tensor, i: torch.Tensor, j: torch.Tensor, q_offset: int) -> torch.Tensor:
        raise NotImplementedError

    def _tile_classes(self, grid: TileGrid) -> torch.Tensor:
        raise NotImplementedError

    def _children(self) -> tuple["Mask", ...]:
        return ()

    def _tensors(self) -> list[torch.Tensor]:
        """Tensors the mask holds (used for device and batch checks)."""
        return []

    def _check_lengths(self, q_len: int, kv_len: int, q_offset: int) -> None:
        """Raise ValueError if the mask cannot describe these lengths."""
        for child in self._children():
            child._check_lengths(q_len, kv_len, q_offset)

    def _moved(self, device: torch.device) -> "Mask":
        """A copy with every tensor on ``device`` (self if nothing moves)."""
        return self

    # ---- derived ------------------------------------------------------------------------
    _batch = 1  # leaves that hold per-batch-row or per-head tensors set these
    _heads = 1

    @property
    def batch_size(self) -> int:
        """Batch rows the mask distinguishes (1 = the same for every row)."""
        if not self._children():
            return self._batch
        return _broadcast_dim([c.batch_size for c in self._children()], "batch size", self)

    @property
    def num_heads(self) -> int:
        """Heads the mask distinguishes (1 = the same for every head)."""
        if not self._children():
            return self._heads
        return _broadcast_dim([c.num_heads for c in self._children()], "head count", self)

    @property
    def device(self) -> torch.device | None:
        """Device of the mask's tensors, or None for masks defined by numbers only."""
        devices = {t.device for t in self._all_tensors()}
        if len(devices) > 1:
            raise ValueError(f"mask {self!r} holds tensors on several devices: {sorted(map(str, devices))}")
        return devices.pop() if devices else None

    def _all_tensors(self) -> list[torch.Tensor]:
        out = list(self._tensors())
        for c in self._children():
            out += c._all_tensors()
        return out

    def to(self, device) -> "Mask":
        """The same mask with its tensors on ``device``."""
        return self._moved(torch.device(device))

    def materialize(self, q_len: int, kv_len: int, q_offset: int | None = None, device=None) -> torch.Tensor:
        """Dense boolean mask ``(B|1, H|1, Lq, Lk)``; True = attend. O(Lq*Lk): for tests only."""
        q_offset = resolve_q_offset(q_len, kv_len, q_offset)
        self._check_lengths(q_len, kv_len, q_offset)
        dev = torch.device(device) if device is not None else (self.device or torch.device("cpu"))
        m = self._moved(dev)
        b = torch.arange(m.batch_size, device=dev).view(-1, 1, 1, 1)
        h = torch.arange(m.num_heads, device=dev).view(1, -1, 1, 1)
        i = (torch.arange(q_len, device=dev) + q_offset).view(1, 1, -1, 1)
        j = torch.arange(kv_len, device=dev).view(1, 1, 1, -1)
        out = m._allowed(b, h, i, j, q_offset)
        return out.expand(m.batch_size, m.num_heads, q_len, kv_len).clone()

    # ---- algebra ------------------------------------------------------------------------
    def __and__(self, other: "Mask") -> "Mask":
        return And(self, _as_mask(other, "&"))

    def __or__(self, other: "Mask") -> "Mask":
        return Or(self, _as_mask(other, "|"))

    def __invert__(self) -> "Mask":
        return Not(self)

    _precedence = 3  # atoms bind tightest; used by repr to place parentheses

    def __repr__(self) -> str:  # pragma: no cover - subclasses override
        return type(self).__name__ + "()"


def _as_mask(x, op: str) -> Mask:
    if not isinstance(x, Mask):
        raise TypeError(f"mask operator '{op}': expected a maskattn Mask, got {type(x).__name__}")
    return x


def _broadcast_dim(sizes: list[int], what: str, mask: Mask) -> int:
    big = {s for s in sizes if s != 1}
    if len(big) > 1:
        raise ValueError(f"mask {mask!r} combines parts with different {what}s: {sorted(big)}")
    return big.pop() if big else 1


def resolve_q_offset(q_len: int, kv_len: int, q_offset) -> int:
    """Default bottom-right alignment: query row r sits at position (kv_len - q_len) + r."""
    for name, v in (("q_len", q_len), ("kv_len", kv_len)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected a positive int, got {v!r}")
    if q_offset is None:
        return kv_len - q_len
    if isinstance(q_offset, torch.Tensor) and q_offset.numel() == 1:
        q_offset = int(q_offset.item())
    if isinstance(q_offset, bool) or not isinstance(q_offset, int):
        raise TypeError(f"q_offset: expected an int or None, got {type(q_offset).__name__}")
    return q_offset


def _wrap(child: Mask, prec: int) -> str:
    s = repr(child)
    return f"({s})" if child._precedence < prec else s


class And(Mask):
    _precedence = 2

    def __init__(self, a: Mask, b: Mask):
        self.a, self.b = a, b
        self.batch_size, self.num_heads  # fail early on incompatible batch/head counts

    def _children(self):
        return (self.a, self.b)

    def _allowed(self, b, h, i, j, q_offset):
        return self.a._allowed(b, h, i, j, q_offset) & self.b._allowed(b, h, i, j, q_offset)

    def _tile_classes(self, grid):
        return torch.minimum(self.a._tile_classes(grid), self.b._tile_classes(grid))

    def _moved(self, device):
        return And(self.a._moved(device), self.b._moved(device))

    def __repr__(self):
        return f"{_wrap(self.a, 2)} & {_wrap(self.b, 2)}"


class Or(Mask):
    _precedence = 1

    def __init__(self, a: Mask, b: Mask):
        self.a, self.b = a, b
        self.batch_size, self.num_heads

    def _children(self):
        return (self.a, self.b)

    def _allowed(self, b, h, i, j, q_offset):
        return self.a._allowed(b, h, i, j, q_offset) | self.b._allowed(b, h, i, j, q_offset)

    def _tile_classes(self, grid):
        return torch.maximum(self.a._tile_classes(grid), self.b._tile_classes(grid))

    def _moved(self, device):
        return Or(self.a._moved(device), self.b._moved(device))

    def __repr__(self):
        return f"{_wrap(self.a, 1)} | {_wrap(self.b, 1)}"


class Not(Mask):
    def __init__(self, a: Mask):
        self.a = a

    def _children(self):
        return (self.a,)

    def _allowed(self, b, h, i, j, q_offset):
        return ~self.a._allowed(b, h, i, j, q_offset)

    def _tile_classes(self, grid):
        return 2 - self.a._tile_classes(grid)

    def _moved(self, device):
        return Not(self.a._moved(device))

    def __repr__(self):
        return f"~{_wrap(self.a, 3)}"


class Named(Mask):
    """A mask defined as a composition of simpler ones but shown under its factory's name."""

    def __init__(self, inner: Mask, name: str, checks=None):
        self.inner, self.name, self._checks = inner, name, checks

    def _children(self):
        return (self.inner,)

    def _allowed(self, b, h, i, j, q_offset):
        return self.inner._allowed(b, h, i, j, q_offset)

    def _tile_classes(self, grid):
        return self.inner._tile_classes(grid)

    def _check_lengths(self, q_len, kv_len, q_offset):
        if self._checks is not None:
            self._checks(q_len, kv_len, q_offset)
        super()._check_lengths(q_len, kv_len, q_offset)

    def _moved(self, device):
        return Named(self.inner._moved(device), self.name, self._checks)

    def __repr__(self):
        return self.name

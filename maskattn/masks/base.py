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

import numbers

import torch

from .checks import MAX_Q_OFFSET, as_device
from .grid import TileGrid
from .walk import fold, walk

# per-object caches that pickling and copying leave behind: compiled BlockMaps (maskattn.api)
# and the transformers plug-in's combined masks
_CACHE_ATTRS = ("_maskattn_cache", "_transformers_combined")
_REPR_LIMIT = 2000  # longer reprs (deep compositions) keep their two ends


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

    def _every_pair(self, q_len: int, kv_len: int, q_offset: int) -> bool:
        """True only if every (query row, key) pair is allowed at these lengths and int offset,
        decided from the mask's numbers alone (no tensors read, no device work); False when
        unsure. Then attention needs no map (``kernels/unmasked_decode.py``)."""
        return False

    def _causal_end(self, q_len: int, kv_len: int, q_offset: int) -> int | None:
        """E where query row r is allowed exactly the keys [0, E - (q_len - 1) + r) at these
        lengths and int offset (causal rows, the last row's end E <= kv_len), decided from the
        mask's numbers alone; None when it is not or when unsure. Then a short query block needs
        no map (``kernels/unmasked_decode.py``)."""
        return None

    # ---- derived ------------------------------------------------------------------------
    _batch = 1  # leaves that hold per-batch-row or per-head tensors set these
    _heads = 1

    @property
    def batch_size(self) -> int:
        """Batch rows the mask distinguishes (1 = the same for every row)."""
        if not self._children() or "_batch" in self.__dict__:  # leaves, and operators (set at construction)
            return self._batch
        return _broadcast_dim([c.batch_size for c in self._children()], "batch size", self)

    @property
    def num_heads(self) -> int:
        """Heads the mask distinguishes (1 = the same for every head)."""
        if not self._children() or "_heads" in self.__dict__:
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
        return [t for node in walk(self, lambda m: m._children()) for t in node._tensors()]

    def to(self, device) -> "Mask":
        """The same mask with its tensors on ``device``."""
        return self._moved(as_device("device", device))

    # ---- pickling ----------------------------------------------------------------------
    def __getstate__(self):
        """Pickle (and copy) without the per-object caches of compiled maps."""
        return {k: v for k, v in self.__dict__.items() if k not in _CACHE_ATTRS}

    def materialize(self, q_len: int, kv_len: int, q_offset: int | None = None, device=None) -> torch.Tensor:
        """Dense boolean mask ``(B|1, H|1, Lq, Lk)``; True = attend. O(Lq*Lk): for tests only.
        ``q_offset`` may be a (B,) integer tensor: batch row ``b`` at ``q_offset[b]``."""
        q_offset = resolve_q_offset(q_len, kv_len, q_offset)
        per_row = isinstance(q_offset, torch.Tensor)
        for value in (sorted(set(q_offset.tolist())) if per_row else (q_offset,)):
            self._check_lengths(q_len, kv_len, value)
        dev = torch.device(device) if device is not None else (self.device or torch.device("cpu"))
        m = self._moved(dev)
        nb = m.batch_size
        if per_row:
            if nb not in (1, q_offset.numel()):
                raise ValueError(f"q_offset: {q_offset.numel()} offsets, but the mask describes {nb} batch rows")
            nb = q_offset.numel()
            q_offset = q_offset.to(dev).view(-1, 1, 1, 1)
        b = torch.arange(nb, device=dev).view(-1, 1, 1, 1)
        h = torch.arange(m.num_heads, device=dev).view(1, -1, 1, 1)
        i = torch.arange(q_len, device=dev).view(1, 1, -1, 1) + q_offset
        j = torch.arange(kv_len, device=dev).view(1, 1, 1, -1)
        out = m._allowed(b, h, i, j, q_offset)
        return out.expand(nb, m.num_heads, q_len, kv_len).clone()

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


def resolve_q_offset(q_len: int, kv_len: int, q_offset):
    """Default bottom-right alignment: query row r sits at position (kv_len - q_len) + r.
    ``q_offset``: None, an int, a NumPy integer or a one-element integer tensor, with
    ``|q_offset| < 2**62`` (so positions and windows stay inside int64 arithmetic) -> an int;
    or a (B,) integer tensor, one offset per batch row -> a (B,) int64 CPU tensor."""
    for name, v in (("q_len", q_len), ("kv_len", kv_len)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected a positive int, got {v!r}")
    if q_offset is None:
        return kv_len - q_len
    if isinstance(q_offset, torch.Tensor):
        if q_offset.dtype == torch.bool or q_offset.is_floating_point() or q_offset.is_complex():
            raise TypeError(f"q_offset: expected an int or an integer tensor, got a tensor of dtype {q_offset.dtype}")
        if q_offset.numel() != 1:
            if q_offset.dim() != 1 or q_offset.numel() == 0:
                raise ValueError(f"q_offset: expected an int, a one-element or a (B,) integer tensor, got shape "
                                 f"{tuple(q_offset.shape)}")
            offsets = q_offset.detach().to("cpu", torch.int64)
            if bool((offsets.abs() >= MAX_Q_OFFSET).any()):
                raise ValueError(f"q_offset: expected |q_offset| < 2**62, got {offsets.tolist()}")
            return offsets
        q_offset = int(q_offset.item())
    elif isinstance(q_offset, bool) or not isinstance(q_offset, numbers.Integral):
        raise TypeError(f"q_offset: expected an int or None, got {type(q_offset).__name__} {q_offset!r}")
    q_offset = int(q_offset)
    if not -MAX_Q_OFFSET < q_offset < MAX_Q_OFFSET:
        raise ValueError(f"q_offset: expected |q_offset| < 2**62, got {q_offset}")
    return q_offset


def _wrap(child: Mask, text: str, prec: int) -> str:
    return f"({text})" if child._precedence < prec else text


class Operator(Mask):
    """Base of ``&``, ``|``, ``~`` and ``Named``: nodes whose element rule, tile classes,
    checks, moves and repr combine their operands'. All of these run through ``walk.fold``,
    iteratively, so compositions thousands of levels deep work."""

    def _init_counts(self):
        ops = self._children()
        self._batch = _broadcast_dim([c.batch_size for c in ops], "batch size", self)
        self._heads = _broadcast_dim([c.num_heads for c in ops], "head count", self)

    # per-node rules, given the operands' values
    def _combine_allowed(self, values):
        raise NotImplementedError

    def _combine_classes(self, values):
        raise NotImplementedError

    def _rebuild(self, operands):
        raise NotImplementedError

    def _own_check(self, q_len, kv_len, q_offset):
        pass

    # the fold over the whole operator tree
    def _allowed(self, b, h, i, j, q_offset):
        return fold(self, _heaviest_first, lambda m: m._allowed(b, h, i, j, q_offset),
                    lambda m, xs: m._combine_allowed(xs))

    def _tile_classes(self, grid):
        return fold(self, _heaviest_first, lambda m: m._tile_classes(grid), lambda m, xs: m._combine_classes(xs))

    def _check_lengths(self, q_len, kv_len, q_offset):
        def combine(m, _):
            m._own_check(q_len, kv_len, q_offset)
        fold(self, _operands, lambda m: m._check_lengths(q_len, kv_len, q_offset), combine)

    def _moved(self, device):
        def combine(m, ops):
            return m if all(a is b for a, b in zip(ops, m._children())) else m._rebuild(ops)
        return fold(self, _operands, lambda m: m._moved(device), combine)

    def _every_pair(self, q_len, kv_len, q_offset):
        return fold(self, _operands, lambda m: m._every_pair(q_len, kv_len, q_offset),
                    lambda m, values: m._combine_every_pair(values))

    def _combine_every_pair(self, values) -> bool:
        return False  # unsure

    def _causal_end(self, q_len, kv_len, q_offset):
        # a leaf that allows every pair counts as an end past every key (``_EVERY``): ANDed with
        # causal rows it leaves them as they are
        def leaf(m):
            return _EVERY if m._every_pair(q_len, kv_len, q_offset) else m._causal_end(q_len, kv_len, q_offset)
        end = fold(self, _operands, leaf, lambda m, values: m._combine_causal_end(values))
        return end if isinstance(end, int) else None

    def _combine_causal_end(self, values):
        return None  # unsure

    def __repr__(self):
        s = fold(self, _infix_operands, repr, lambda m, texts: m._format(texts))
        if len(s) > _REPR_LIMIT:
            keep = _REPR_LIMIT // 2 - 20
            s = f"{s[:keep]} ...<{len(s) - 2 * keep} characters>... {s[-keep:]}"
        return s

    def _format(self, texts):
        raise NotImplementedError


_EVERY = float("inf")  # ``Operator._causal_end``'s value for a mask that allows every pair


def _operands(m):
    return m._children() if isinstance(m, Operator) else None


def _heaviest_first(m):
    # evaluate operator operands before leaves: along a chain, only two values are alive at once
    if not isinstance(m, Operator):
        return None
    ops = m._children()
    return tuple(sorted(ops, key=lambda c: not isinstance(c, Operator))) if len(ops) > 1 else ops


def _infix_operands(m):
    return m._children() if isinstance(m, (And, Or, Not)) else None  # Named shows its name


class And(Operator):
    _precedence = 2

    def __init__(self, a: Mask, b: Mask):
        self.a, self.b = a, b
        self._init_counts()  # fail early on incompatible batch/head counts

    def _children(self):
        return (self.a, self.b)

    def _combine_allowed(self, values):
        return values[0] & values[1]

    def _combine_classes(self, values):
        return torch.minimum(values[0], values[1])

    def _rebuild(self, operands):
        return And(*operands)

    def _combine_every_pair(self, values):
        return all(values)

    def _combine_causal_end(self, values):  # the shorter of two key prefixes per row
        return None if None in values else min(values)

    def _format(self, texts):
        return f"{_wrap(self.a, texts[0], 2)} & {_wrap(self.b, texts[1], 2)}"


class Or(Operator):
    _precedence = 1

    def __init__(self, a: Mask, b: Mask):
        self.a, self.b = a, b
        self._init_counts()

    def _children(self):
        return (self.a, self.b)

    def _combine_allowed(self, values):
        return values[0] | values[1]

    def _combine_classes(self, values):
        return torch.maximum(values[0], values[1])

    def _rebuild(self, operands):
        return Or(*operands)

    def _combine_every_pair(self, values):
        return any(values)

    def _combine_causal_end(self, values):  # the longer of two key prefixes per row
        return None if None in values else max(values)

    def _format(self, texts):
        return f"{_wrap(self.a, texts[0], 1)} | {_wrap(self.b, texts[1], 1)}"


class Not(Operator):
    def __init__(self, a: Mask):
        self.a = a
        self._init_counts()

    def _children(self):
        return (self.a,)

    def _combine_allowed(self, values):
        return ~values[0]

    def _combine_classes(self, values):
        return 2 - values[0]

    def _rebuild(self, operands):
        return Not(*operands)

    def _format(self, texts):
        return f"~{_wrap(self.a, texts[0], 3)}"


class Named(Operator):
    """A mask defined as a composition of simpler ones but shown under its factory's name.
    ``checks(q_len, kv_len, q_offset)``: optional extra length checks (must be picklable)."""

    def __init__(self, inner: Mask, name: str, checks=None):
        self.inner, self.name, self._checks = inner, name, checks
        self._init_counts()

    def _children(self):
        return (self.inner,)

    def _combine_allowed(self, values):
        return values[0]

    def _combine_classes(self, values):
        return values[0]

    def _rebuild(self, operands):
        return Named(operands[0], self.name, self._checks)

    def _combine_every_pair(self, values):
        return values[0] and self._checks is None  # its own length checks: not decided here

    def _combine_causal_end(self, values):
        return values[0] if self._checks is None else None

    def _own_check(self, q_len, kv_len, q_offset):
        if self._checks is not None:
            self._checks(q_len, kv_len, q_offset)

    def __repr__(self):
        return self.name

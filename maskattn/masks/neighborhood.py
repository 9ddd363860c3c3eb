"""``neighborhood(shape, kernel, causal=False)``: NATTEN-style neighborhood attention on an
N-D grid of tokens (images ``(H, W)``, video ``(T, H, W)``), laid out row-major."""
from __future__ import annotations

import math

import torch

from .base import Mask
from .grid import TileGrid, tile_class


def _window_start(c: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """NATTEN's clamped window: start = min(max(c - k // 2, 0), n - k)."""
    return (c - k // 2).clamp(0, n - k)


class Neighborhood(Mask):
    def __init__(self, shape: tuple[int, ...], kernel: tuple[int, ...], causal: bool, name: str):
        self.grid_shape, self.kernel, self.causal, self.name = shape, kernel, causal, name
        self.size = math.prod(shape)
        self.strides = tuple(math.prod(shape[a + 1:]) for a in range(len(shape)))

    def _check_lengths(self, q_len, kv_len, q_offset):
        if kv_len != self.size:
            raise ValueError(f"{self.name}: the grid holds {self.size} tokens, but kv_len is {kv_len}")

    def _allowed(self, b, h, i, j, q_offset):
        ok = (i >= 0) & (i < self.size) & (j >= 0) & (j < self.size)
        for a, (n, k, st) in enumerate(zip(self.grid_shape, self.kernel, self.strides)):
            ci, cj = torch.div(i, st, rounding_mode="floor") % n, torch.div(j, st, rounding_mode="floor") % n
            start = _window_start(ci, n, k)
            ok = ok & (cj >= start) & (cj < start + k)
            if a == 0 and self.causal:
                ok = ok & (cj <= ci)
        return ok

    def _coord_range(self, p0: torch.Tensor, p1: torch.Tensor, axis: int):
        """Min and max coordinate along ``axis`` over positions [p0, p1] (contiguous, row-major):
        the exact pair when the range stays in one period of that axis, [0, n-1] when it wraps."""
        n, st = self.grid_shape[axis], self.strides[axis]
        lo, hi = torch.div(p0, st, rounding_mode="floor"), torch.div(p1, st, rounding_mode="floor")
        wraps = torch.div(lo, n, rounding_mode="floor") != torch.div(hi, n, rounding_mode="floor")
        return torch.where(wraps, 0, lo % n), torch.where(wraps, n - 1, hi % n)

    def _tile_classes(self, grid: TileGrid):
        dev = grid.device
        q0 = torch.arange(grid.n_q_tiles, device=dev) * grid.block_q + grid.q_offset
        q1 = torch.clamp(q0 + grid.block_q, max=grid.q_offset + grid.q_len) - 1
        k0 = torch.arange(grid.n_k_tiles, device=dev) * grid.block_k
        k1 = torch.clamp(k0 + grid.block_k, max=grid.kv_len) - 1
        inside = ((q0 >= 0) & (q1 < self.size))[:, None] & ((k0 >= 0) & (k1 < self.size))[None, :]
        some = ((q1 >= 0) & (q0 < self.size))[:, None] & ((k1 >= 0) & (k0 < self.size))[None, :]
        every = inside
        cq0, cq1, ck0, ck1 = q0.clamp(0, self.size - 1), q1.clamp(0, self.size - 1), k0, k1.clamp(0, self.size - 1)
        for a, (n, k) in enumerate(zip(self.grid_shape, self.kernel)):
            qmin, qmax = (x[:, None] for x in self._coord_range(cq0, cq1, a))
            kmin, kmax = (x[None, :] for x in self._coord_range(ck0, ck1, a))
            s_lo, s_hi = _window_start(qmin, n, k), _window_start(qmax, n, k)  # start is monotone in c
            some = some & (kmax >= s_lo) & (kmin <= s_hi + k - 1)  # keys meet the union of windows
            every = every & (kmin >= s_hi) & (kmax <= s_lo + k - 1)  # keys inside every window
            if a == 0 and self.causal:
                some, every = some & (kmin <= qmax), every & (kmax <= qmin)
        return tile_class(some, every)[None, None]

    def __repr__(self):
        return self.name


def neighborhood(shape, kernel, causal: bool = False) -> Mask:
    """Tokens laid out row-major on a grid ``shape`` (``(H, W)``, ``(T, H, W)``, ...). Along each
    axis of size ``n`` with odd kernel size ``k <= n`` a query at coordinate ``c`` sees keys at
    ``start <= c' < start + k``, ``start = min(max(c - k // 2, 0), n - k)`` (NATTEN's clamped
    window); the mask is the AND over axes. ``causal=True`` also requires the key's first-axis
    coordinate ``<=`` the query's (temporal causality). ``kernel``: an int (every axis) or one
    per axis. The sequence length must be ``prod(shape)``."""
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else None
    if not shape or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
        raise ValueError(f"neighborhood: shape: expected a tuple of positive ints, got {shape!r}")
    kernel = (kernel,) * len(shape) if isinstance(kernel, int) and not isinstance(kernel, bool) else kernel
    if not isinstance(kernel, (tuple, list)) or len(kernel) != len(shape):
        raise ValueError(f"neighborhood: kernel: expected an int or {len(shape)} ints, got {kernel!r}")
    kernel = tuple(kernel)
    for a, (n, k) in enumerate(zip(shape, kernel)):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ValueError(f"neighborhood: kernel[{a}]: expected an odd positive int, got {k!r}")
        if k > n:
            raise ValueError(f"neighborhood: kernel[{a}] = {k} is larger than its axis ({n})")
    if not isinstance(causal, bool):
        raise TypeError(f"neighborhood: causal: expected a bool, got {type(causal).__name__}")
    name = f"neighborhood({shape}, {kernel}{', causal=True' if causal else ''})"
    return Neighborhood(shape, kernel, causal, name)

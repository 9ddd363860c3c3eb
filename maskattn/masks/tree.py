"""``tree(parents, prefix=0)``: tree attention (speculative decoding, shared-prompt rollouts).

Positions ``< prefix`` are a shared prefix (causal among themselves, seen by every tree
node); position ``prefix + t`` is tree node ``t``, which sees itself and its ancestors.
Ancestry is tested with Euler-tour intervals: ``a`` is an ancestor-or-self of ``d`` iff
``tin[a] <= tin[d] < tout[a]``, so tiles classify from per-tile min/max of tin and tout.
"""
from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import spsolve_triangular

from .base import Mask, Named
from .checks import as_index_tensor, nonneg_int
from .grid import TileGrid, lookup, lookup_index, tile_class, with_fill


def euler_intervals(parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pre-order entry ``tin`` and exit ``tout = tin + subtree size`` of every node, in
    O(n) sparse triangular solves (no Python loop over nodes). ``parents[t] < t``."""
    n = len(parents)
    child = np.nonzero(parents >= 0)[0]
    # children matrix C[p, c] = 1; subtree sizes solve (I - C) size = 1 (upper triangular)
    c_mat = sp.csr_matrix((np.ones(len(child)), (parents[child], child)), shape=(n, n))
    eye = sp.identity(n, format="csr")
    size = spsolve_triangular((eye - c_mat).tocsr(), np.ones(n), lower=False)
    # offset of each node from its parent's entry: 1 + sizes of its earlier siblings
    group = np.where(parents >= 0, parents, n)
    order = np.lexsort((np.arange(n), group))
    sizes_sorted = size[order]
    before = np.cumsum(sizes_sorted) - sizes_sorted
    first = np.r_[True, group[order][1:] != group[order][:-1]]
    before -= np.maximum.accumulate(np.where(first, before, -1.0))
    offset = np.empty(n)
    offset[order] = before
    offset += parents >= 0
    # tin[c] = tin[parent[c]] + offset[c] (lower triangular)
    tin = spsolve_triangular((eye - c_mat.T).tocsr(), offset, lower=True)
    tin = np.rint(tin).astype(np.int64)
    return tin, tin + np.rint(size).astype(np.int64)


class _EulerTour(Mask):
    """A tree mask's Euler-tour intervals (``tin``, ``tout``: (n,) int64), the shared prefix's
    length and the name; subclasses build their lookup tables from them (``_tables``)."""

    def __init__(self, tin: torch.Tensor, tout: torch.Tensor, prefix: int, name: str):
        self.tin, self.tout, self.prefix, self.name = tin, tout, prefix, name
        self._tables()

    def _tables(self) -> None:
        raise NotImplementedError

    def _tensors(self):
        return [self.tin, self.tout]

    def _moved(self, device):
        if self.tin.device == device:
            return self
        return type(self)(self.tin.to(device), self.tout.to(device), self.prefix, self.name)

    def __repr__(self):
        return self.name


class TreeAncestry(_EulerTour):
    """``tree(parents)`` without a prefix: position ``j`` is an ancestor-or-self of position ``i``.

    Positions that are not tree nodes read stand-in values that fail every ancestry test:
    a query tin of -1 (no one's descendant), a key tin of ``n`` and tout of 0 (no one's ancestor)."""

    def _tables(self):
        tin, tout, n = self.tin, self.tout, self.tin.numel()
        self._fills = (-1, n, 0)  # query tin, key tin, key tout outside the tree
        # query tin (1, n + 1); key tin and tout stacked (2, n + 1): one gather reads both
        self._q_tin = with_fill(tin[None], -1)
        self._k_tables = torch.cat([with_fill(tin[None], n), with_fill(tout[None], 0)])

    def _allowed(self, b, h, i, j, q_offset):
        k_tables = self._k_tables
        tj, oj = k_tables[:, lookup_index(k_tables, j)]  # key tin and tout in one gather
        ti = lookup(self._q_tin, i)
        return (tj <= ti) & (ti < oj)

    def _tile_classes(self, grid: TileGrid):
        (qmin, qmax), (kmin, kmax), (omin, omax) = (
            torch.aminmax(grid.tile_values(t[None], axis, fill), dim=-1)
            for t, axis, fill in zip((self.tin, self.tin, self.tout), "qkk", self._fills))
        qmin, qmax = qmin[:, :, None], qmax[:, :, None]
        kmin, kmax, omin, omax = kmin[:, None, :], kmax[:, None, :], omin[:, None, :], omax[:, None, :]
        # the stand-ins keep both tests exact where every row and column is a node, and
        # conservative elsewhere: a tile holding a non-node is never FULL
        some = (kmin <= qmax) & (omax > qmin)
        every = (kmax <= qmin) & (omin > qmax)
        return tile_class(some, every)[:, None]


class PrefixTree(_EulerTour):
    """``tree(parents, prefix)`` for ``prefix > 0``: the causal prefix and the nodes' ancestry
    as one interval test per pair, ``lo[j] <= v[i] < hi[j]`` (three passes over the
    q_len x kv_len elements where the two parts and their ``|`` took five: a verification
    step compiles its map every step).

    Query position ``i`` reads a value ``v``: ``i`` in the prefix, ``prefix + tin`` of its node
    in the tree, ``prefix - 1`` past the tree (every prefix key, no node), -1 before position 0
    (no key). Key ``j`` reads an interval: ``[j, BIG)`` in the prefix (seen by every later
    value: causal), ``[prefix + tin, prefix + tout)`` for a node (its descendants' values), empty
    past the tree. Both come from tables over the ``prefix + n`` positions, built once: a lookup
    is one gather (and its index clamp), not the arithmetic per call."""

    _BIG = 1 << 62

    def _tables(self):
        tin, tout, prefix = self.tin, self.tout, self.prefix
        pos = torch.arange(prefix, device=tin.device)
        # query values at positions -1 .. prefix + n: the ends stand for everything before / after
        self._q_values = torch.cat([pos.new_tensor([-1]), pos, tin + prefix, pos.new_tensor([prefix - 1])])
        # key intervals (lo; hi) at positions 0 .. prefix + n - 1, then the empty one past the tree
        lo = torch.cat([pos, tin + prefix, pos.new_tensor([self._BIG])])
        hi = torch.cat([torch.full_like(pos, self._BIG), tout + prefix, pos.new_tensor([0])])
        self._k_intervals = torch.stack([lo, hi])

    def _query_values(self, i: torch.Tensor) -> torch.Tensor:
        return self._q_values[(i + 1).clamp(0, self._q_values.numel() - 1)]

    def _key_intervals(self, j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(self._k_intervals[:, lookup_index(self._k_intervals, j)])  # lo and hi in one gather

    def _allowed(self, b, h, i, j, q_offset):
        v = self._query_values(i)
        lo, hi = self._key_intervals(j)
        return (lo <= v) & (v < hi)

    def _tile_classes(self, grid: TileGrid):
        n_q, n_k = grid.n_q_tiles * grid.block_q, grid.n_k_tiles * grid.block_k
        # rows / columns past Lq / Lk repeat the last real one, as TileGrid.tile_values does
        i = grid.q_offset + torch.arange(n_q, device=grid.device).clamp(max=grid.q_len - 1)
        j = torch.arange(n_k, device=grid.device).clamp(max=grid.kv_len - 1)
        vmin, vmax = torch.aminmax(self._query_values(i).view(1, -1, grid.block_q), dim=-1)
        lo, hi = self._key_intervals(j)
        (lmin, lmax), (hmin, hmax) = (torch.aminmax(t.view(1, -1, grid.block_k), dim=-1) for t in (lo, hi))
        vmin, vmax = vmin[:, :, None], vmax[:, :, None]
        lmin, lmax, hmin, hmax = lmin[:, None, :], lmax[:, None, :], hmin[:, None, :], hmax[:, None, :]
        # exact where a tile's intervals nest (one causal prefix, one subtree), conservative elsewhere
        some = (lmin <= vmax) & (hmax > vmin)
        every = (lmax <= vmin) & (hmin > vmax)
        return tile_class(some, every)[:, None]


def _check_kv_len(name: str, total: int, q_len: int, kv_len: int, q_offset: int) -> None:
    if kv_len != total:
        raise ValueError(f"{name}: prefix + number of nodes = {total}, but kv_len is {kv_len}")


def tree(parents, prefix: int = 0) -> Mask:
    """``parents[t]``: parent of tree node ``t`` (``-1`` for a root), ``parents[t] < t``.
    ``prefix``: length of the shared prefix before the first tree node."""
    prefix = nonneg_int("tree: prefix", prefix)
    par = as_index_tensor("tree: parents", parents, (1,))
    p = par.cpu().numpy()
    if len(p) == 0:
        raise ValueError("tree: parents must name at least one node, got an empty list")
    t = np.arange(len(p))
    bad = np.nonzero((p >= t) | (p < -1))[0]
    if len(bad):
        k = int(bad[0])
        raise ValueError(f"tree: parents[{k}] must be -1 or a node index < {k}, got {int(p[k])}")
    tin, tout = euler_intervals(p)
    n = len(p)
    name = f"tree(parents=<{n} nodes>{f', prefix={prefix}' if prefix else ''})"

    check = functools.partial(_check_kv_len, name, prefix + n)  # a module-level function: picklable
    tin, tout = torch.from_numpy(tin).to(par.device), torch.from_numpy(tout).to(par.device)
    nodes = PrefixTree(tin, tout, prefix, name) if prefix else TreeAncestry(tin, tout, 0, name)
    return Named(nodes, name, checks=check)

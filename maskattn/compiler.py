"""``compile_mask``: mask object -> ``BlockMap``, in O(tiles + partial-tile elements).

Steps: (1) every mask classifies all tiles from its parameters (EMPTY/PARTIAL/FULL,
compositions via min/max); (2) tiles that stick out of the grid are capped at PARTIAL;
(3) elements are evaluated only inside PARTIAL tiles, which gives their bitmaps and
demotes conservative PARTIALs that turn out all-empty or all-full; (4) the classes are
turned into the CSR row and column views the kernels walk. Everything is vectorised in
torch on the mask's device; no Python loop over tiles, no (Lq, Lk) tensor.
"""
from __future__ import annotations

import torch

from .block_map import BlockMap
from .masks.base import Mask, resolve_q_offset
from .masks.grid import EMPTY, FULL, PARTIAL, TileGrid

_MAX_CHUNK_ELEMENTS = 1 << 24  # bound on the temporary element buffer for partial tiles
_PARTIAL_COST = 1.5  # a partial tile costs about this many full tiles (bit unpacking)


def _check_block(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum or value & (value - 1):
        raise ValueError(f"{name}: expected a power of two >= {minimum}, got {value}")
    return value


def compile_mask(mask: Mask, q_len: int, kv_len: int, *, q_offset: int | None = None,
                 block_q: int = 128, block_k: int = 128, device=None) -> BlockMap:
    """Compile ``mask`` for ``q_len`` queries and ``kv_len`` keys into a ``BlockMap``.

    ``q_offset``: absolute position of query row 0 (default ``kv_len - q_len``).
    ``block_q`` / ``block_k``: tile shape (powers of two; ``block_k >= 32``); kernels may
    sub-tile but never cross tiles. ``device``: where to build the map (default: the
    device of the mask's tensors, else CPU); the mask's tensors are moved there.
    """
    if not isinstance(mask, Mask):
        raise TypeError(f"compile_mask: mask must be a maskattn Mask, got {type(mask).__name__}")
    q_offset = resolve_q_offset(q_len, kv_len, q_offset)
    block_q = _check_block("block_q", block_q, 16)
    block_k = _check_block("block_k", block_k, 32)
    mask._check_lengths(q_len, kv_len, q_offset)
    dev = torch.device(device) if device is not None else (mask.device or torch.device("cpu"))
    m = mask.to(dev)
    nb, nh = m.batch_size, m.num_heads
    grid = TileGrid(q_len, kv_len, q_offset, block_q, block_k, dev)
    tq, tk = grid.n_q_tiles, grid.n_k_tiles

    cls = m._tile_classes(grid).expand(nb, nh, tq, tk).contiguous()
    if q_len % block_q:
        cls[:, :, -1, :].clamp_(max=PARTIAL)
    if kv_len % block_k:
        cls[:, :, :, -1].clamp_(max=PARTIAL)

    cand = (cls == PARTIAL).nonzero()  # (P, 4): b, h, qt, kt in row-major order
    words, keep, n_true = _partial_bits(m, grid, cand)
    full_from_bits = cand[~keep & (n_true > 0)]
    cls[tuple(cand[~keep].T)] = EMPTY
    cls[tuple(full_from_bits.T)] = FULL
    cand, words = cand[keep], words[keep]

    num_allowed = (cls == FULL).sum((2, 3)) * (block_q * block_k)
    num_allowed.index_put_((cand[:, 0], cand[:, 1]), n_true[keep], accumulate=True)

    full = (cls == FULL).nonzero()
    n_rows, n_cols = nb * nh * tq, nb * nh * tk
    full_ptr, full_idx = _csr(full, tq, n_rows, row_dim=2, col_dim=3, heads=nh)
    part_ptr, part_idx = _csr(cand, tq, n_rows, row_dim=2, col_dim=3, heads=nh)

    t_full_order = _column_order(full, nh, tk, tq)
    t_full_ptr, t_full_idx = _csr(full[t_full_order], tk, n_cols, row_dim=3, col_dim=2, heads=nh)
    t_part_order = _column_order(cand, nh, tk, tq)
    t_part_ptr, t_part_idx = _csr(cand[t_part_order], tk, n_cols, row_dim=3, col_dim=2, heads=nh)

    row_cost = full_ptr.diff() + _PARTIAL_COST * part_ptr.diff()
    col_cost = t_full_ptr.diff() + _PARTIAL_COST * t_part_ptr.diff()
    return BlockMap(
        q_len=q_len, kv_len=kv_len, q_offset=q_offset, block_q=block_q, block_k=block_k, batch=nb, heads=nh,
        full_ptr=full_ptr, full_idx=full_idx, part_ptr=part_ptr, part_idx=part_idx, bitmaps=words,
        t_full_ptr=t_full_ptr, t_full_idx=t_full_idx, t_part_ptr=t_part_ptr, t_part_idx=t_part_idx,
        t_part_slot=t_part_order.to(torch.int32),
        q_order=_heaviest_first(row_cost.view(nb * nh, tq)), k_order=_heaviest_first(col_cost.view(nb * nh, tk)),
        num_allowed=num_allowed, mask_repr=repr(mask),
    )


def _partial_bits(m: Mask, grid: TileGrid, cand: torch.Tensor):
    """Evaluate the elements of candidate partial tiles, chunk by chunk.

    Returns packed words (P, block_q, block_k // 32) int32, ``keep`` (P,) — the tile
    really is partial — and the number of allowed pairs per tile (P,)."""
    bq, bk, dev = grid.block_q, grid.block_k, grid.device
    rows = torch.arange(bq, device=dev)
    cols = torch.arange(bk, device=dev)
    weights = (torch.ones(32, dtype=torch.int64, device=dev) << torch.arange(32, device=dev))
    chunk = max(1, _MAX_CHUNK_ELEMENTS // (bq * bk))
    words, keep, n_true = [], [], []
    for start in range(0, cand.shape[0], chunk):  # a loop over chunks of tiles, not tiles
        c = cand[start:start + chunk]
        b, h = c[:, 0].view(-1, 1, 1), c[:, 1].view(-1, 1, 1)
        r = (c[:, 2] * bq).view(-1, 1, 1) + rows.view(1, -1, 1)
        k = (c[:, 3] * bk).view(-1, 1, 1) + cols.view(1, 1, -1)
        bits = m._allowed(b, h, r + grid.q_offset, k, grid.q_offset) & (r < grid.q_len) & (k < grid.kv_len)
        bits = bits.expand(c.shape[0], bq, bk)
        count = bits.sum((1, 2))
        n_true.append(count)
        # all-ones tiles become FULL; ragged tiles never reach bq*bk because outside bits are 0
        keep.append((count > 0) & (count < bq * bk))
        packed = (bits.view(-1, bq, bk // 32, 32).long() * weights).sum(-1)
        words.append(torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32))
    if not words:
        empty = torch.zeros(0, dtype=torch.int64, device=dev)
        return torch.zeros(0, bq, bk // 32, dtype=torch.int32, device=dev), empty.bool(), empty
    return torch.cat(words), torch.cat(keep), torch.cat(n_true)


def _csr(coords: torch.Tensor, inner: int, n_rows: int, *, row_dim: int, col_dim: int, heads: int):
    """CSR pointers and indices from tile coordinates (N, 4) already sorted by map row."""
    row = (coords[:, 0] * heads + coords[:, 1]) * inner + coords[:, row_dim]
    ptr = torch.zeros(n_rows + 1, dtype=torch.int32, device=coords.device)
    ptr[1:] = torch.bincount(row, minlength=n_rows).cumsum(0)
    return ptr, coords[:, col_dim].to(torch.int32).contiguous()


def _column_order(coords: torch.Tensor, heads: int, tk: int, tq: int) -> torch.Tensor:
    """Permutation that sorts tile coordinates by (b, h, key tile, query tile)."""
    key = ((coords[:, 0] * heads + coords[:, 1]) * tk + coords[:, 3]) * tq + coords[:, 2]
    return torch.argsort(key)


def _heaviest_first(cost: torch.Tensor) -> torch.Tensor:
    """(G, T) work per tile row -> (G, T) int32 tile indices by descending work."""
    return torch.argsort(cost, dim=1, descending=True, stable=True).to(torch.int32).contiguous()

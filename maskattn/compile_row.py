"""``compile_mask`` for maps of one query tile (``q_len <= block_q``: decoding, tree
verification, short chunks), without host synchronisation.

The general compiler sizes its element evaluation and its tile lists from counts it reads
back from the device (two syncs). With a single query tile the work is small and fixed:
the ``q_len`` real rows times every key, so this path evaluates them all, derives the exact
tile classes from the bit counts, and builds the CSR lists at their largest possible size
(``torch.nonzero_static``): the pointers are exact, the index arrays carry unused entries
past ``ptr[-1]``. Every size is known on the host, so a decode step that compiles its map
can be captured in a CUDA graph. On the CPU, where reading a size costs nothing, the lists
are trimmed to their exact sizes. Classes follow the usual rule: a tile that sticks out past
``Lq`` or ``Lk`` is never FULL.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .block_map import BlockMap
from .kernels import plans
from .kernels.band_row_map import build_band_row_lists
from .kernels.config import interpreting
from .kernels.row_map import build_row_lists
from .masks.band import Band
from .masks.base import Mask
from .masks.full import Full
from .masks.grid import TileGrid

_FULL_COST, _PARTIAL_COST = 2, 3  # as in compiler.py: a partial tile costs about 1.5 full ones


_POSITIONS: dict = {}  # device -> cached arange
_MAX_CACHED = 1 << 22  # positions (32 MiB of int64): longer ranges are made fresh


def positions(start: int, n: int, device: torch.device, capturing: bool | None = None) -> torch.Tensor:
    """``torch.arange(start, start + n)`` (int64), as a view of a cached arange where it fits:
    a decode step compiles its map every step, and each arange is a kernel launch on the GPU.
    Made fresh while a CUDA graph is being captured (the graph owns what it allocates);
    ``capturing``: whether it is, if the caller knows (None: look it up)."""
    end = start + n
    if capturing is None:
        capturing = plans.capturing(device)
    if start < 0 or end > _MAX_CACHED or capturing:
        return torch.arange(start, end, device=device)
    cached = _POSITIONS.get(device)
    if cached is None or cached.numel() < end:
        cached = _POSITIONS[device] = torch.arange(min(_MAX_CACHED, max(2 * end, 1 << 16)), device=device)
    return cached[start:end]


def compile_single_row(m: Mask, grid: TileGrid, mask_repr: str, q_offsets: torch.Tensor | None = None) -> BlockMap:
    """``m`` already on ``grid.device``; ``grid.n_q_tiles == 1``. ``q_offsets``: optional (B,)
    int64 tensor, one query offset per batch row (paged decoding with per-request cache
    lengths); the map then has B batch rows and ``q_offset`` holds that tensor."""
    dev, lq = grid.device, grid.q_len
    nb, nh = m.batch_size, m.num_heads
    triton_build = dev.type == "cuda" or interpreting()
    band = _band_bounds(m) if q_offsets is None and triton_build else None
    if band is not None:  # causal, sliding window, full: one launch from the band's parameters
        lists = build_band_row_lists(*band, grid.q_offset, lq, grid.kv_len, grid.block_q, grid.block_k, dev)
    else:
        bits, nb = _bits(m, grid, q_offsets)
        if triton_build:  # three launches (kernels/row_map.py)
            lists = build_row_lists(bits, lq, grid.kv_len, grid.block_q, grid.block_k)
        else:
            lists = _row_lists_torch(bits, grid)
    if dev.type == "cpu":  # reading sizes costs nothing here: exact lists, as the general compiler gives
        n_full, n_part = int(lists["full_ptr"][-1]), int(lists["part_ptr"][-1])
        for name, size in (("full_idx", n_full), ("t_full_idx", n_full), ("part_idx", n_part),
                           ("t_part_idx", n_part), ("t_part_slot", n_part), ("bitmaps", n_part)):
            lists[name] = lists[name][:size].clone()
    return BlockMap(q_len=lq, kv_len=grid.kv_len, q_offset=grid.q_offset if q_offsets is None else q_offsets,
                    block_q=grid.block_q, block_k=grid.block_k, batch=nb, heads=nh, mask_repr=mask_repr, **lists)


def _band_bounds(m: Mask) -> tuple[int | None, int | None] | None:
    """(left, right) of a band mask (``i - left <= j <= i + right``, None: unbounded), or None."""
    if type(m) is Band:
        return m.left, m.right
    if type(m) is Full:
        return None, None
    return None


def _bits(m: Mask, grid: TileGrid, q_offsets: torch.Tensor | None) -> tuple[torch.Tensor, int]:
    """The mask on the ``q_len`` real rows times every key: ((B, H, Lq, Lk) bool, possibly
    broadcast, and B)."""
    dev, lq = grid.device, grid.q_len
    nb, nh = m.batch_size, m.num_heads
    offset = grid.q_offset
    capturing = plans.capturing(dev)
    if q_offsets is None:
        i = positions(offset, lq, dev, capturing).view(1, 1, -1, 1)
    else:
        nb = max(nb, q_offsets.numel())
        offset = q_offsets.view(-1, 1, 1, 1)
        i = positions(0, lq, dev, capturing).view(1, 1, -1, 1) + offset
    b = positions(0, nb, dev, capturing).view(-1, 1, 1, 1)
    h = positions(0, nh, dev, capturing).view(1, -1, 1, 1)
    j = positions(0, grid.kv_len, dev, capturing).view(1, 1, 1, -1)
    return m._allowed(b, h, i, j, offset).expand(nb, nh, lq, grid.kv_len), nb


def _row_lists_torch(bits: torch.Tensor, grid: TileGrid) -> dict:
    """The fields ``build_row_lists`` gives, in torch operations (CPU without the Triton
    interpreter). bits: (B, H, Lq, Lk) bool."""
    from .compiler import _pack_bits  # shared bit helper

    dev, bq, bk, lq, tk = grid.device, grid.block_q, grid.block_k, grid.q_len, grid.n_k_tiles
    nb, nh = bits.shape[:2]
    groups = nb * nh
    bits = F.pad(bits, (0, tk * bk - grid.kv_len))  # keys past Lk: not allowed
    # (groups, Lq, Tk, bk) -> tiles (groups * Tk, Lq, bk)
    bits = bits.reshape(groups, lq, tk, bk).transpose(1, 2).contiguous()
    tiles = bits.view(groups * tk, lq, bk)
    n_true = tiles.view(groups * tk, -1).sum(1, dtype=torch.int32)  # (groups * Tk,)
    words = _pack_bits(tiles)  # (groups * Tk, Lq, bk // 32)
    if lq < bq:  # rows past Lq: zero bits
        words = F.pad(words, (0, 0, 0, bq - lq))
    full = n_true == bq * bk  # only possible when the tile sticks out nowhere
    part = (n_true > 0) & ~full
    n = groups * tk
    flat = torch.stack((full, part))  # (2, groups * Tk)
    counts = flat.view(2, groups, tk).sum(2, dtype=torch.int32)
    zero = counts.new_zeros(2, 1)
    ptr = torch.cat((zero, counts.cumsum(1, dtype=torch.int32)), 1)  # (2, groups + 1): rows are groups
    t_ptr = torch.cat((zero, flat.cumsum(1, dtype=torch.int32)), 1)  # (2, n + 1): columns are tiles
    full_pos = torch.nonzero_static(full, size=n, fill_value=0).view(-1)
    part_pos = torch.nonzero_static(part, size=n, fill_value=0).view(-1)
    cost = (flat[0] * _FULL_COST + flat[1] * _PARTIAL_COST).view(groups, tk)
    zeros = torch.zeros(n, dtype=torch.int32, device=dev)  # query tile of column entries
    return dict(
        full_ptr=ptr[0].contiguous(), full_idx=(full_pos % tk).to(torch.int32), part_ptr=ptr[1].contiguous(),
        part_idx=(part_pos % tk).to(torch.int32), bitmaps=words.index_select(0, part_pos),
        t_full_ptr=t_ptr[0].contiguous(), t_full_idx=zeros, t_part_ptr=t_ptr[1].contiguous(), t_part_idx=zeros.clone(),
        # one query tile: the columns in order are the partial tiles in order
        t_part_slot=torch.arange(n, dtype=torch.int32, device=dev),
        q_order=torch.zeros(groups, 1, dtype=torch.int32, device=dev),
        k_order=torch.argsort(cost, dim=1, descending=True, stable=True).to(torch.int32),
        num_allowed=n_true.view(groups, tk).sum(1).view(nb, nh),
    )

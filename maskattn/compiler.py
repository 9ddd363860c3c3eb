"""``compile_mask``: mask object -> ``BlockMap``, in O(tiles + partial-tile elements).

Steps: (1) every mask classifies all tiles from its parameters (EMPTY/PARTIAL/FULL,
compositions via min/max); (2) tiles that stick out of the grid are capped at PARTIAL;
(3) elements are evaluated only inside PARTIAL tiles, which gives their bitmaps and
demotes conservative PARTIALs that turn out all-empty or all-full; (4) the classes are
turned into the CSR row and column views the kernels walk. Everything is vectorised in
torch on the mask's device; no Python loop over tiles, no (Lq, Lk) tensor.

On a GPU the work is small and the cost is the number of operations (one kernel launch
each) and of host synchronisations. So the steps use few, whole-grid operations, and the
host waits for the device only twice: for the number of PARTIAL candidates (it sizes the
element evaluation) and for the final numbers of FULL and PARTIAL tiles (they size the
map); every other size is known on the host, which ``torch.nonzero_static`` exploits.
"""
from __future__ import annotations

import torch

from .block_map import BlockMap
from .batch_rows import stack_batch_rows
from .compile_row import compile_single_row
from .masks.base import Mask, resolve_q_offset
from .masks.checks import as_device
from .masks.grid import EMPTY, FULL, PARTIAL, TileGrid

# bound on the elements evaluated at once: 128 Mi = 8192 tiles of 128 x 128, a few bytes of
# temporaries each; more candidates are evaluated in several chunks (each costs ~20 launches)
_MAX_CHUNK_ELEMENTS = 1 << 27
# a partial tile costs about 1.5 full tiles (bit unpacking); as integers: 2 per full tile, 3 per partial
_FULL_COST, _PARTIAL_COST = 2, 3
# int64 multipliers that combine the 8 bytes of a word in its top byte (no carries for the
# values used here): ``_GATHER_BYTES`` moves the bit of byte k to bit 56 + k, ``_ADD_BYTES`` adds the bytes
_GATHER_BYTES = 0x0102040810204080
_ADD_BYTES = 0x0101010101010101


def _check_block(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum or value & (value - 1):
        raise ValueError(f"{name}: expected a power of two >= {minimum}, got {value}")
    return value


def compile_mask(mask: Mask, q_len: int, kv_len: int, *, q_offset: int | None = None,
                 block_q: int = 128, block_k: int = 128, device=None) -> BlockMap:
    """Compile ``mask`` for ``q_len`` queries and ``kv_len`` keys into a ``BlockMap``.

    ``q_offset``: absolute position of query row 0 (default ``kv_len - q_len``), or a (B,)
    integer tensor with one offset per batch row (requests with different cache lengths): the
    map then has B batch rows, row ``b`` compiled at ``q_offset[b]`` (one query tile: without
    host syncs; otherwise once per distinct offset).
    ``block_q`` / ``block_k``: tile shape (powers of two; ``block_k >= 32``); kernels may
    sub-tile but never cross tiles. ``device``: where to build the map (default: the
    device of the mask's tensors, else CPU); the mask's tensors are moved there.
    """
    if not isinstance(mask, Mask):
        raise TypeError(f"compile_mask: mask must be a maskattn Mask, got {type(mask).__name__}")
    q_offset = resolve_q_offset(q_len, kv_len, q_offset)
    block_q = _check_block("block_q", block_q, 16)
    block_k = _check_block("block_k", block_k, 32)
    if isinstance(q_offset, torch.Tensor):
        return _compile_per_batch_offsets(mask, q_len, kv_len, q_offset, block_q, block_k, device)
    mask._check_lengths(q_len, kv_len, q_offset)
    dev = _resolve_device(device, mask)
    m = mask.to(dev)
    nb, nh = m.batch_size, m.num_heads
    grid = TileGrid(q_len, kv_len, q_offset, block_q, block_k, dev)
    if grid.n_q_tiles == 1:  # one query tile (decoding, tree verification): no host syncs
        return compile_single_row(m, grid, repr(mask))
    tq, tk, tile_size = grid.n_q_tiles, grid.n_k_tiles, block_q * block_k
    groups = nb * nh  # distinct (batch row, head) maps

    cls = _initial_classes(m, grid, groups)  # (groups * tq * tk,) int8, row-major
    cand = (cls == PARTIAL).nonzero().view(-1)  # host sync 1; flat tile numbers, ascending
    n_true, words = _partial_bits(m, grid, cand, nb, nh)
    code = _demote(cls, cand, n_true, tile_size)

    # the final classes as two rows of flags, FULL tiles then PARTIAL tiles
    flags = cls == torch.arange(FULL, EMPTY, -1, device=dev)[:, None]
    per_group = flags.view(2, groups, -1).sum(2)
    busiest_row = flags.view(2, groups * tq, tk).sum((0, 2)).max()
    busiest_col = flags.view(2, groups, tq, tk).sum((0, 2)).max()
    *sizes, max_row_tiles, max_col_tiles = torch.cat(  # host sync 2
        [per_group.sum(1), busiest_row.view(1), busiest_col.view(1)]).tolist()
    n_full, n_part = sizes
    if n_part < cand.numel():  # some candidates were demoted: drop their bitmaps
        words = words[torch.nonzero_static(code == PARTIAL, size=n_part).view(-1)]
    # FULL tiles (those found all-allowed included) count tile_size each, partial ones their n_true
    num_allowed = (per_group[0] * tile_size).index_add_(0, cand // (tq * tk), n_true % tile_size)

    n_rows, n_cols = groups * tq, groups * tk
    tiles, ptr, full_idx, part_idx = _tile_lists(flags, n_full, n_part, n_rows, tk)  # row view
    t_tiles, t_ptr, t_full_idx, t_part_idx = _tile_lists(  # column view
        flags.view(2, groups, tq, tk).transpose(2, 3), n_full, n_part, n_cols, tq)
    # bitmap of each column-view partial tile: its rank among the partial tiles in row-major order
    t_part_slot = torch.searchsorted(tiles[n_full:], _row_major(t_tiles[n_full:], t_part_idx, tq, tk),
                                     out_int32=True)
    return BlockMap(
        q_len=q_len, kv_len=kv_len, q_offset=q_offset, block_q=block_q, block_k=block_k, batch=nb, heads=nh,
        full_ptr=ptr[:n_rows + 1], full_idx=full_idx, part_ptr=ptr[n_rows:] - n_full, part_idx=part_idx,
        bitmaps=words, t_full_ptr=t_ptr[:n_cols + 1], t_full_idx=t_full_idx, t_part_ptr=t_ptr[n_cols:] - n_full,
        t_part_idx=t_part_idx, t_part_slot=t_part_slot,
        q_order=_heaviest_first(ptr, n_rows, groups), k_order=_heaviest_first(t_ptr, n_cols, groups),
        num_allowed=num_allowed.view(nb, nh), max_row_tiles=max_row_tiles, max_col_tiles=max_col_tiles,
        nonempty_tiles=n_full + n_part,
        mask_repr=repr(mask),
    )


def _compile_per_batch_offsets(mask: Mask, q_len: int, kv_len: int, offsets: torch.Tensor, block_q: int,
                               block_k: int, device) -> BlockMap:
    """A map with one batch row per entry of ``offsets`` (B,), row ``b`` at ``offsets[b]``."""
    n = offsets.numel()
    if mask.batch_size not in (1, n):
        raise ValueError(f"q_offset: {n} offsets, but the mask describes {mask.batch_size} batch rows")
    distinct = sorted(set(offsets.tolist()))
    for value in distinct:
        mask._check_lengths(q_len, kv_len, value)
    dev = _resolve_device(device, mask)
    grid = TileGrid(q_len, kv_len, distinct[0], block_q, block_k, dev)
    if grid.n_q_tiles == 1:  # the sync-free path evaluates every row at its own offset
        return compile_single_row(mask.to(dev), grid, repr(mask), q_offsets=offsets.to(dev))
    maps = {v: compile_mask(mask, q_len, kv_len, q_offset=v, block_q=block_q, block_k=block_k, device=dev)
            for v in distinct}
    return stack_batch_rows([maps[v] for v in offsets.tolist()], offsets.to(dev))


def _resolve_device(device, mask: Mask) -> torch.device:
    dev = as_device("device", device) if device is not None else (mask.device or torch.device("cpu"))
    if dev.type == "meta":  # the map's sizes depend on the mask's values
        raise ValueError("device: compile_mask needs a device with data, got meta (compile on 'cpu' and move the "
                         "BlockMap with .to('meta'); a mask holding meta tensors cannot be compiled)")
    if dev.type == "cuda" and dev.index is None:  # "cuda" -> "cuda:N", so that masks already there stay put
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _initial_classes(m: Mask, grid: TileGrid, groups: int) -> torch.Tensor:
    """The mask's (possibly conservative) tile classes as a flat, writable int8 tensor, with
    the tiles that stick out past Lq / Lk capped at PARTIAL (kernels skip bounds checks on FULL)."""
    tq, tk = grid.n_q_tiles, grid.n_k_tiles
    cls = m._tile_classes(grid).to(torch.int8).expand(m.batch_size, m.num_heads, tq, tk)
    cls = cls.reshape(groups, tq, tk).contiguous()  # a copy only where the mask broadcasts
    if grid.q_len % grid.block_q:
        cls[:, -1, :].clamp_(max=PARTIAL)
    if grid.kv_len % grid.block_k:
        cls[:, :, -1].clamp_(max=PARTIAL)
    return cls.view(-1)


def _partial_bits(m: Mask, grid: TileGrid, cand: torch.Tensor, batch: int, heads: int):
    """Evaluate the elements of the candidate tiles ``cand`` (flat tile numbers).

    Returns the number of allowed pairs per tile (P,) int64 and the packed bitmaps
    (P, block_q, block_k // 32) int32. Tiles are taken in chunks of bounded size (usually one)."""
    bq, bk, tq, tk, dev = grid.block_q, grid.block_k, grid.n_q_tiles, grid.n_k_tiles, grid.device
    q_rows = torch.arange(grid.q_offset, grid.q_offset + bq, device=dev).view(1, -1, 1)  # positions in a tile
    k_cols = torch.arange(bk, device=dev).view(1, 1, -1)
    per_chunk = max(1, _MAX_CHUNK_ELEMENTS // (bq * bk))
    counts, words = [], []
    for start in range(0, cand.numel(), per_chunk):  # a loop over chunks of tiles, not over tiles
        f = cand[start:start + per_chunk]
        row = f // tk  # map row (b * heads + h) * tq + qt
        g = (row // tq).view(-1, 1, 1)
        if batch * heads == 1:  # one map: b = h = 0 and row = qt
            b, h, qt = g, g, row
        else:
            b, h, qt = g // heads, g % heads, row % tq
        i = torch.add(q_rows, qt.view(-1, 1, 1), alpha=bq)
        j = torch.add(k_cols, (f % tk).view(-1, 1, 1), alpha=bk)
        bits = m._allowed(b, h, i, j, grid.q_offset)
        if grid.q_len % bq:  # rows / columns past Lq / Lk stay 0
            bits = bits & (i < grid.q_offset + grid.q_len)
        if grid.kv_len % bk:
            bits = bits & (j < grid.kv_len)
        bits = bits.expand(f.numel(), bq, bk).contiguous()
        counts.append(_count_true(bits))
        words.append(_pack_bits(bits))
    if len(counts) == 1:
        return counts[0], words[0]
    if not counts:
        counts, words = [cand.new_zeros(0)], [torch.zeros(0, bq, bk // 32, dtype=torch.int32, device=dev)]
    return torch.cat(counts), torch.cat(words)


def _count_true(bits: torch.Tensor) -> torch.Tensor:
    """(P, bq, bk) contiguous bool -> (P,) int64 number of True per tile. ``bits.sum()`` would
    first cast every bool to int64; instead int64 words of 8 bools are added 8 at a time (each
    byte of a sum is then at most 8: no carries) and the bytes of each sum by ``_ADD_BYTES``."""
    sums = bits.view(torch.int64).view(bits.shape[0], -1, 8).sum(-1)  # (P, bq * bk / 64)
    return ((sums * _ADD_BYTES) >> 56).sum(1)  # top byte: the sum of the 8 bytes, at most 64


def _pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """(P, bq, bk) contiguous bool -> (P, bq, bk // 32) int32, bit ``c % 32`` of word ``c // 32``
    = column ``c``. Each int64 view of 8 bools (bytes 0/1, little-endian: column 8w + k is byte k)
    times ``_GATHER_BYTES`` has the 8 bits in its top byte; 4 such bytes in a row are one int32."""
    octets = bits.view(torch.int64) * _GATHER_BYTES  # (P, bq, bk // 8); overflow wraps, as intended
    packed = octets.view(torch.uint8)[..., 7::8].contiguous()  # byte 7 = the top byte (little-endian)
    return packed.view(torch.int32)


def _demote(cls: torch.Tensor, cand: torch.Tensor, n_true: torch.Tensor, tile_size: int) -> torch.Tensor:
    """Write the exact classes of the candidate tiles into ``cls`` and return them: 0 allowed
    pairs -> EMPTY, all ``tile_size`` -> FULL (never a ragged tile: its bits past Lq / Lk are 0),
    else PARTIAL. That is the bucket of ``n_true`` among the boundaries [1, tile_size]."""
    code = torch.bucketize(n_true, torch.arange(1, tile_size + 1, tile_size - 1, device=cls.device), right=True)
    cls[cand] = code.to(torch.int8)
    return code


def _tile_lists(flags: torch.Tensor, n_full: int, n_part: int, n_rows: int, inner: int):
    """The tiles of ``flags`` (2, map rows of ``inner`` tiles; FULL row then PARTIAL row) as one
    ascending list of flat numbers (FULL tiles 0 .. N-1, PARTIAL tiles N .. 2N-1, in map-row
    order), with CSR pointers (2 * n_rows + 1,) int32 (``[:n_rows + 1]`` for the FULL tiles,
    ``[n_rows:]`` minus ``n_full`` for the PARTIAL ones) and the inner indices (int32) of each class."""
    tiles = torch.nonzero_static(flags.reshape(-1), size=n_full + n_part).view(-1)
    starts = torch.arange(0, (2 * n_rows + 1) * inner, inner, device=tiles.device)
    ptr = torch.searchsorted(tiles, starts, out_int32=True)
    # one tensor per class, not slices of one: kernels (Triton specialises on pointer alignment)
    # get freshly allocated index arrays
    full_idx, part_idx = (torch.remainder(t, inner, out=torch.empty(t.shape, dtype=torch.int32, device=t.device))
                          for t in (tiles[:n_full], tiles[n_full:]))
    return tiles, ptr, full_idx, part_idx


def _row_major(flat: torch.Tensor, qt: torch.Tensor, tq: int, tk: int) -> torch.Tensor:
    """Column-major tile numbers ``((g * tk) + kt) * tq + qt`` -> row-major ``((g * tq) + qt) * tk + kt``."""
    kt = (flat // tq) % tk
    return flat.add(qt, alpha=tk - 1).sub_(kt, alpha=tq - 1)


def _heaviest_first(ptr: torch.Tensor, n_rows: int, groups: int) -> torch.Tensor:
    """(groups, T) int32 tile indices of each (b, h) by descending work (busy rows first), from
    the pointers of ``_tile_lists``."""
    cost = (ptr[:n_rows + 1] * _FULL_COST).add_(ptr[n_rows:], alpha=_PARTIAL_COST).diff()  # offsets cancel
    return torch.argsort(cost.view(groups, -1), dim=1, descending=True, stable=True).to(torch.int32)

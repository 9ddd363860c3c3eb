"""Per-batch query offsets: a BlockMap whose batch row ``b`` was compiled with ``q_offset[b]``.

The kernels never read ``q_offset``; they walk the map, which may differ per batch row. So a
``(B,)`` tensor of offsets (requests of different cache lengths decoding together) needs only
a map with B batch rows: ``compile_mask`` compiles the mask once per distinct offset and
``stack_batch_rows`` takes each batch row from the compile of its offset. (One query tile is
handled without host syncs by ``compile_row.compile_single_row`` directly.)
"""
from __future__ import annotations

import torch

from .block_map import BlockMap


def _rows(ptr: torch.Tensor, idx: torch.Tensor, r0: int, r1: int, extra=()):
    """Entries of CSR rows [r0, r1): rebased pointers (r1 - r0 + 1,), the index slice and the
    same slice of every tensor in ``extra``; also the first entry's position."""
    e0, e1 = int(ptr[r0]), int(ptr[r1])
    return ptr[r0:r1 + 1] - e0, idx[e0:e1], [t[e0:e1] for t in extra], e0


def stack_batch_rows(maps: list[BlockMap], q_offset: torch.Tensor) -> BlockMap:
    """``maps[b]``: a map (batch 1 or B) whose row ``b`` (or 0) is batch row ``b`` of the result.
    ``q_offset``: (B,) int64, kept on the result."""
    first = maps[0]
    nh, tq, tk = first.heads, first.n_q_tiles, first.n_k_tiles
    parts = {k: [] for k in ("full_ptr", "full_idx", "part_ptr", "part_idx", "bitmaps", "t_full_ptr", "t_full_idx",
                             "t_part_ptr", "t_part_idx", "t_part_slot", "q_order", "k_order", "num_allowed")}
    n_full = n_part = 0
    row_tiles, col_tiles = [], []  # non-empty tiles per map row / column, read back once at the end
    for b, m in enumerate(maps):
        bs = b if m.batch > 1 else 0
        rows = (bs * nh * tq, (bs + 1) * nh * tq)
        cols = (bs * nh * tk, (bs + 1) * nh * tk)
        fp, fi, _, _ = _rows(m.full_ptr, m.full_idx, *rows)
        pp, pi, (bits,), p_first = _rows(m.part_ptr, m.part_idx, *rows, extra=(m.bitmaps,))
        tfp, tfi, _, _ = _rows(m.t_full_ptr, m.t_full_idx, *cols)
        tpp, tpi, (slot,), _ = _rows(m.t_part_ptr, m.t_part_idx, *cols, extra=(m.t_part_slot,))
        skip = 1 if b else 0  # each row's pointers start where the previous row's ended
        parts["full_ptr"].append((fp + n_full)[skip:])
        parts["part_ptr"].append((pp + n_part)[skip:])
        parts["t_full_ptr"].append((tfp + n_full)[skip:])
        parts["t_part_ptr"].append((tpp + n_part)[skip:])
        parts["full_idx"].append(fi)
        parts["part_idx"].append(pi)
        parts["bitmaps"].append(bits)
        parts["t_full_idx"].append(tfi)
        parts["t_part_idx"].append(tpi)
        parts["t_part_slot"].append(slot - p_first + n_part)  # bitmap rows move with their partial tiles
        parts["q_order"].append(m.q_order[bs * nh:(bs + 1) * nh])
        parts["k_order"].append(m.k_order[bs * nh:(bs + 1) * nh])
        parts["num_allowed"].append(m.num_allowed[bs:bs + 1])
        n_full += fi.numel()
        n_part += pi.numel()
        row_tiles.append(fp.diff() + pp.diff())
        col_tiles.append(tfp.diff() + tpp.diff())
    cat = {k: torch.cat(v) for k, v in parts.items()}
    return BlockMap(q_len=first.q_len, kv_len=first.kv_len, q_offset=q_offset, block_q=first.block_q,
                    block_k=first.block_k, batch=len(maps), heads=nh, mask_repr=first.mask_repr,
                    max_row_tiles=int(torch.cat(row_tiles).max()), max_col_tiles=int(torch.cat(col_tiles).max()),
                    nonempty_tiles=n_full + n_part, **cat)

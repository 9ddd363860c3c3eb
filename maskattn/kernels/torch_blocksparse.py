"""Block-sparse attention in plain PyTorch: the path for CPU tensors without the Triton
interpreter. It walks the same BlockMap one query tile at a time (memory O(block_q * Lk)
per step, never Lq x Lk) and is differentiable through ordinary autograd."""
from __future__ import annotations

import torch

from ..block_map import BlockMap
from ..reference import masked_softmax_av


def _tile_columns(bm: BlockMap, row: int):
    """Key positions (n,) and the (block_q, n) allowed-mask of one map row."""
    bq, bk = bm.block_q, bm.block_k
    f0, f1 = int(bm.full_ptr[row]), int(bm.full_ptr[row + 1])
    p0, p1 = int(bm.part_ptr[row]), int(bm.part_ptr[row + 1])
    tiles = torch.cat([bm.full_idx[f0:f1], bm.part_idx[p0:p1]]).long()
    cols = (tiles[:, None] * bk + torch.arange(bk)).reshape(-1)
    full = torch.ones(bq, (f1 - f0) * bk, dtype=torch.bool)
    words = bm.bitmaps[p0:p1]  # (P, bq, bk/32)
    bits = ((words[..., None] >> torch.arange(32, dtype=torch.int32)) & 1).bool()  # (P, bq, bk/32, 32)
    part = bits.reshape(p1 - p0, bq, bk).permute(1, 0, 2).reshape(bq, -1)
    allowed = torch.cat([full, part], dim=1)
    inside = cols < bm.kv_len  # partial tiles may stick out; their bits there are 0
    return cols[inside], allowed[:, inside]


def blocksparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bm: BlockMap, scale: float,
                          softcap: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """q: (B, Hq, Lq, D), k/v: (B, Hkv, Lk, D) on CPU -> out (B, Hq, Lq, D), lse (B, Hq, Lq) fp32."""
    b, hq, lq, d = q.shape
    hkv = k.shape[1]
    group = hq // hkv
    bm = bm.to("cpu")
    per_batch = []
    for bi in range(bm.batch):
        bsel = slice(None) if bm.batch == 1 else slice(bi, bi + 1)
        per_head = []
        for hi in range(bm.heads):
            hsel = slice(None) if bm.heads == 1 else slice(hi, hi + 1)
            kvsel = slice(None) if bm.heads == 1 else slice(hi // group, hi // group + 1)
            outs, lses = [], []
            for qt in range(bm.n_q_tiles):
                rows = slice(qt * bm.block_q, min((qt + 1) * bm.block_q, lq))
                n_rows = rows.stop - rows.start
                cols, allowed = _tile_columns(bm, (bi * bm.heads + hi) * bm.n_q_tiles + qt)
                qs = q[bsel, hsel, rows].float()  # (b', h', m, D)
                ks = k[bsel, kvsel][:, :, cols].float()
                vs = v[bsel, kvsel][:, :, cols].float()
                if bm.heads == 1:  # (b', Hkv, G, m, D) against (b', Hkv, 1, n, D): no repeated K/V
                    qs = qs.unflatten(1, (hkv, group))
                    ks, vs = ks[:, :, None], vs[:, :, None]
                s = qs @ ks.transpose(-1, -2) * scale
                if softcap is not None:
                    s = softcap * torch.tanh(s / softcap)
                o, l = masked_softmax_av(s, allowed[:n_rows], vs)
                outs.append(o.flatten(1, 2) if bm.heads == 1 else o)
                lses.append(l.flatten(1, 2) if bm.heads == 1 else l)
            per_head.append((torch.cat(outs, dim=2), torch.cat(lses, dim=2)))
        per_batch.append(tuple(torch.cat(parts, dim=1) for parts in zip(*per_head)))
    out, lse = (torch.cat(parts, dim=0) for parts in zip(*per_batch))
    return out.to(q.dtype), lse

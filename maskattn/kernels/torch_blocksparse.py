"""Block-sparse attention in plain PyTorch: the path for CPU tensors without the Triton
interpreter. It walks the same BlockMap one query tile at a time (memory O(block_q * Lk)
per step, never Lq x Lk), in fp32, with an explicit backward (the custom op in ``op.py``
calls both; neither records an autograd graph of its own).

Keys and values are gathered per tile; non-finite entries are zeroed before the products
and come back only in the rows allowed to see them (``reference.finite_kv``), so a NaN in a
masked-out slot reaches no output."""
from __future__ import annotations

import torch

from ..block_map import BlockMap
from ..reference import finite_kv, masked_softmax_av


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


def _steps(bm: BlockMap, hq: int, hkv: int, lq: int):
    """One step per map row: index selections for q-like tensors (batch, head, rows) and for
    k-like tensors (batch, KV head), the key columns and the (m, n) allowed-mask. With a map
    shared by all heads (``bm.heads == 1``) a step covers every head at once."""
    group = hq // hkv
    for bi in range(bm.batch):
        bsel = slice(None) if bm.batch == 1 else slice(bi, bi + 1)
        for hi in range(bm.heads):
            hsel = slice(None) if bm.heads == 1 else slice(hi, hi + 1)
            kvsel = slice(None) if bm.heads == 1 else slice(hi // group, hi // group + 1)
            for qt in range(bm.n_q_tiles):
                rows = slice(qt * bm.block_q, min((qt + 1) * bm.block_q, lq))
                cols, allowed = _tile_columns(bm, (bi * bm.heads + hi) * bm.n_q_tiles + qt)
                yield (bsel, hsel, rows), (bsel, kvsel), cols, allowed[:rows.stop - rows.start]


def _gather(k, v, ksel, cols, fold: bool):
    """fp32 keys / values of the step's columns, finite (see module docstring), and the bad-key
    flags; with ``fold`` (b', Hkv, 1, n, ...) to broadcast against (b', Hkv, G, m, ...) queries."""
    ks, vs, bad = finite_kv(k[ksel][:, :, cols].float(), v[ksel][:, :, cols].float())
    if fold:
        ks, vs, bad = ks[:, :, None], vs[:, :, None], bad[:, :, None]
    return ks, vs, bad


def _rows(x: torch.Tensor, qsel, hkv: int, fold: bool) -> torch.Tensor:
    """x[qsel] in fp32; with ``fold`` the heads split into (Hkv, G): no repeated K/V."""
    t = x[qsel].float()
    return t.unflatten(1, (hkv, -1)) if fold else t


def _scores(qs, ks, scale, softcap):
    """Scores and, with softcap, tanh(raw / softcap) (the backward needs it)."""
    s = qs @ ks.transpose(-1, -2) * scale
    if softcap is None:
        return s, None
    t = torch.tanh(s / softcap)
    return softcap * t, t


def blocksparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bm: BlockMap, scale: float,
                          softcap: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """q: (B, Hq, Lq, D), k/v: (B, Hkv, Lk, D) on CPU -> out (B, Hq, Lq, D) in q's dtype, lse (B, Hq, Lq) fp32."""
    b, hq, lq, d = q.shape
    hkv = k.shape[1]
    bm = bm.to("cpu")
    fold = bm.heads == 1
    out = torch.empty(b, hq, lq, d, dtype=torch.float32)
    lse = torch.empty(b, hq, lq, dtype=torch.float32)
    for qsel, ksel, cols, allowed in _steps(bm, hq, hkv, lq):
        ks, vs, bad = _gather(k, v, ksel, cols, fold)
        s, _ = _scores(_rows(q, qsel, hkv, fold), ks, scale, softcap)
        o, l = masked_softmax_av(s, allowed, vs, bad_keys=bad)
        out[qsel] = o.flatten(1, 2) if fold else o
        lse[qsel] = l.flatten(1, 2) if fold else l
    return out.to(q.dtype), lse


def blocksparse_attention_backward(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                   out: torch.Tensor, lse: torch.Tensor, dlse: torch.Tensor | None, bm: BlockMap,
                                   scale: float, softcap: float | None):
    """Gradients of ``blocksparse_attention`` (FlashAttention-2 formulas, P recomputed from lse).
    do/q/out: (B, Hq, Lq, D); k/v: (B, Hkv, Lk, D); lse/dlse: (B, Hq, Lq). Returns dq, dk, dv
    typed like q, k, v. Masked-out pairs contribute exactly 0 (``where``, not a product with 0)."""
    b, hq, lq, d = q.shape
    hkv = k.shape[1]
    bm = bm.to("cpu")
    fold = bm.heads == 1
    delta = (do.float() * out.float()).sum(-1)  # (B, Hq, Lq)
    if dlse is not None:  # d lse / d S = P: a gradient on lse shifts delta
        delta = delta - dlse.float()
    dq = torch.zeros(q.shape, dtype=torch.float32)
    dk = torch.zeros(k.shape, dtype=torch.float32)
    dv = torch.zeros(v.shape, dtype=torch.float32)
    for qsel, ksel, cols, allowed in _steps(bm, hq, hkv, lq):
        ks, vs, _ = _gather(k, v, ksel, cols, fold)
        qs, dos = _rows(q, qsel, hkv, fold), _rows(do, qsel, hkv, fold)
        stat = (lse[qsel], delta[qsel])
        l_t, dl_t = (x.unflatten(1, (hkv, -1)) if fold else x for x in stat)
        s, t = _scores(qs, ks, scale, softcap)
        p = torch.where(allowed, torch.exp(s - l_t[..., None]), 0.0)  # (.., m, n)
        ds = torch.where(allowed, p * (dos @ vs.transpose(-1, -2) - dl_t[..., None]), 0.0)
        if t is not None:
            ds = ds * (1 - t * t)
        ds = ds * scale
        dqs = ds @ ks
        dq[qsel] = dqs.flatten(1, 2) if fold else dqs
        dks, dvs = ds.transpose(-1, -2) @ qs, p.transpose(-1, -2) @ dos
        if fold:  # sum over the query heads of each KV head
            dks, dvs = dks.sum(2), dvs.sum(2)
        dk[ksel].index_add_(2, cols, dks)
        dv[ksel].index_add_(2, cols, dvs)
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)

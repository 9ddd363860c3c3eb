"""``paged_attention``: decoding over a paged KV cache (vLLM-style block tables).

The cache is a pool of pages ``(num_pages, Hkv, page_size, D)``; ``page_table[b, p]`` names the
page holding logical keys ``[p * page_size, (p + 1) * page_size)`` of request ``b`` and
``kv_lens[b]`` how many of them are written. The mask sees logical positions: query row ``r``
of request ``b`` sits at ``kv_lens[b] - q_len + r`` (a per-request query offset) and keys at or
past ``kv_lens[b]`` are never attended (nor read). The map is built without host syncs, so a
decode step can be captured in a CUDA graph. Where the mask shows every request all its keys
(the default ``causal()`` for one new token), or each query row the keys up to its own position
(``causal()`` for several new tokens), no map is built at all and the launch is replayed from
call to call (``kernels/unmasked_decode.py``).
"""
from __future__ import annotations

import torch

from .api import _check_scale, _check_softcap
from .compile_row import compile_single_row
from .kernels import unmasked_decode
from .kernels.config import interpreting
from .kernels.decode import MAX_Q, decode_forward
from .kernels.torch_blocksparse import blocksparse_attention
from .masks.band import causal
from .masks.base import Mask
from .masks.grid import TileGrid
from .masks.positions import KeyPrefix


def paged_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, mask: Mask | None = None, *,
                    page_table: torch.Tensor, kv_lens: torch.Tensor, scale: float | None = None,
                    softcap: float | None = None, return_lse: bool = False):
    """Attention of short query blocks over a paged KV cache (inference only: no gradients).

    q: (B, Hq, Lq, D), Lq <= 64; k_cache, v_cache: (num_pages, Hkv, page_size, D), Hq % Hkv == 0;
    page_table: (B, max_pages) int32 / int64 page numbers; kv_lens: (B,) int, written keys per
    request (1 <= kv_lens[b] <= max_pages * page_size, and >= Lq). ``mask`` (default ``causal()``)
    is any maskattn mask over logical positions. Returns out (B, Hq, Lq, D) in q's dtype, and
    with ``return_lse=True`` also lse (B, Hq, Lq) fp32."""
    b, hkv, page_size, d = _check(q, k_cache, v_cache, page_table, kv_lens)
    lq = q.shape[2]
    scale = _check_scale(scale, d)
    softcap = _check_softcap(softcap)
    mask = causal() if mask is None else mask
    if not isinstance(mask, Mask):
        raise TypeError(f"mask: expected a maskattn Mask or None, got {type(mask).__name__}")
    lk = page_table.shape[1] * page_size  # the logical length every request could reach
    mask._check_lengths(lq, lk, lk - lq)
    table = page_table.to(device=q.device, dtype=torch.int32).contiguous()
    # request b's rows sit at kv_lens[b] - Lq over keys [0, kv_lens[b]): a mask that shows every
    # key there at the longest length does so at every length (``Mask._every_pair`` accepts masks
    # of j - i alone), and so does one that shows each row the keys up to its own position
    # (``Mask._causal_end``: causal(), for several new tokens); the kernel then needs no map, only
    # the key counts (``unmasked_decode``)
    if (q.is_cuda or interpreting()) and unmasked_decode.applies(q, k_cache):
        every = unmasked_decode.sees_every_key(mask, lq, lk, lk - lq)
        rows = not every and unmasked_decode.causal_end(mask, lq, lk, lk - lq) == lk
        if every or rows:
            ends = kv_lens.to(device=q.device, dtype=torch.int32)
            out, lse = unmasked_decode.forward(q, k_cache, v_cache, scale, softcap, page_table=table, kv_end=ends,
                                               causal_rows=rows)
            return (out, lse) if return_lse else out
    lens = kv_lens.to(device=q.device, dtype=torch.int64)
    effective = mask & KeyPrefix(lens, "kv_lens")
    grid = TileGrid(lq, lk, lk - lq, max(16, 1 << (lq - 1).bit_length()), 128, q.device)
    bm = compile_single_row(effective.to(q.device), grid, repr(mask), q_offsets=lens - lq)
    if bm.batch not in (1, b) or bm.heads not in (1, q.shape[1]):
        raise ValueError(f"mask: describes {bm.batch} batch rows and {bm.heads} heads, but q has batch {b} "
                         f"and {q.shape[1]} heads")
    if q.is_cuda or interpreting():
        out, lse = decode_forward(q, k_cache, v_cache, bm, scale, softcap, page_table=table)
    else:  # plain CPU: gather the pages, then the block-sparse PyTorch path over the same map
        pages = table.long()
        k, v = (c[pages].permute(0, 2, 1, 3, 4).reshape(b, hkv, lk, d) for c in (k_cache, v_cache))
        out, lse = blocksparse_attention(q, k, v, bm, scale, softcap)
    return (out, lse) if return_lse else out


def _check(q, k_cache, v_cache, page_table, kv_lens):
    for name, t in (("q", q), ("k_cache", k_cache), ("v_cache", v_cache), ("page_table", page_table),
                    ("kv_lens", kv_lens)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if q.dim() != 4 or k_cache.dim() != 4 or k_cache.shape != v_cache.shape:
        raise ValueError(f"q: expected (B, Hq, Lq, D) and k_cache, v_cache: equal (num_pages, Hkv, page_size, D), "
                         f"got {tuple(q.shape)}, {tuple(k_cache.shape)}, {tuple(v_cache.shape)}")
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32) or not (q.dtype == k_cache.dtype == v_cache.dtype):
        raise TypeError(f"q, k_cache, v_cache: expected one of float16/bfloat16/float32, got "
                        f"{q.dtype}, {k_cache.dtype}, {v_cache.dtype}")
    if q.requires_grad or k_cache.requires_grad or v_cache.requires_grad:
        raise ValueError("paged_attention is inference-only (no gradients): gather the pages and call "
                         "maskattn.attention() to train")
    b, hq, lq, d = q.shape
    hkv, page_size = k_cache.shape[1], k_cache.shape[2]
    if k_cache.shape[-1] != d or not 16 <= d <= 256:
        raise ValueError(f"k_cache: expected head dim {d} like q (16..256), got {k_cache.shape[-1]}")
    if hkv == 0 or hq % hkv:
        raise ValueError(f"k_cache: query heads ({hq}) must be a multiple of key/value heads ({hkv})")
    if not 1 <= lq <= MAX_Q:
        raise ValueError(f"q: paged_attention takes 1..{MAX_Q} query rows, got {lq}")
    if page_table.dim() != 2 or page_table.shape[0] != b or page_table.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"page_table: expected ({b}, max_pages) int32/int64, got {tuple(page_table.shape)} "
                         f"{page_table.dtype}")
    if kv_lens.shape != (b,) or kv_lens.dtype.is_floating_point or kv_lens.dtype == torch.bool:
        raise ValueError(f"kv_lens: expected ({b},) integers, got {tuple(kv_lens.shape)} {kv_lens.dtype}")
    if not (q.device == k_cache.device == v_cache.device):
        raise ValueError(f"q, k_cache, v_cache: expected one device, got {q.device}, {k_cache.device}, {v_cache.device}")
    return b, hkv, page_size, d

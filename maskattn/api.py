"""``maskattn.attention``: the public entry point. Checks inputs, compiles (and caches)
the mask's BlockMap, and calls the attention custom op (``kernels/op.py``), which runs the
Triton kernels (CUDA, or CPU under ``TRITON_INTERPRET=1``) or the block-sparse PyTorch path
(other CPU runs)."""
from __future__ import annotations

import math
from collections import OrderedDict

import torch

from .block_map import BlockMap
from .compiler import compile_mask
from .kernels.config import default_scale
from .kernels.decode import MAX_Q
from .kernels.op import masked_attention, replay_decode, replay_unmasked, unmasked_attention
from .kernels.unmasked_decode import causal_end, sees_every_key
from .masks.base import Mask, resolve_q_offset
from .masks.full import full

_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_CACHE_SIZE = 8  # compiled maps kept per mask object (lengths / offsets / devices)
_FULL = full()


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Mask | BlockMap | None = None, *,
              scale: float | None = None, q_offset: int | None = None, softcap: float | None = None,
              return_lse: bool = False, deterministic: bool | None = None):
    """Masked attention.

    q: (B, Hq, Lq, D); k, v: (B, Hkv, Lk, D) with ``Hq % Hkv == 0`` (GQA/MQA: query head
    ``h`` reads KV head ``h // (Hq // Hkv)``); fp16, bf16 or fp32; D in [16, 256]; any strides.
    ``mask``: a mask object (compiled on first use and cached on the object), a
    ``BlockMap`` from ``compile_mask`` (compile once, reuse across layers), or None (no mask).
    A short query block (up to 64 rows) whose mask lets every query see every key (None, or
    e.g. ``causal()`` for one new token at the default offset), or each query the keys up to its
    own position (``causal()`` for several new tokens, its last row at or before the last key)
    decodes without any map when no gradient is needed, its launch replayed at any key count
    (``kernels/unmasked_decode.py``).
    ``q_offset`` may also be a (B,) integer tensor: batch row ``b``'s queries start at
    ``q_offset[b]`` (requests with different cache lengths in one batch).
    ``scale``: softmax scale, any finite float (0 gives uniform weights over the allowed keys),
    default ``1/sqrt(D)``. ``q_offset``: absolute position of query row 0, default ``Lk - Lq``
    (an int, NumPy integer or one-element integer tensor; ``|q_offset| < 2**62``).
    ``softcap``: a finite positive float; scores become ``softcap * tanh(s / softcap)``.
    ``deterministic``: backward determinism. By default (None) it follows
    ``torch.are_deterministic_algorithms_enabled()`` at call time: off -> the fastest path
    (atomics allowed), on -> bitwise-reproducible gradients; True / False override it.

    Returns ``out: (B, Hq, Lq, D)`` in q's dtype, and with ``return_lse=True`` also
    ``lse: (B, Hq, Lq)`` fp32 natural log (-inf for fully masked rows, whose output is 0).
    Keys and values at positions the mask excludes never influence any output (NaN or Inf
    stored there included).

    Differentiable in q, k, v (once: differentiating the gradients again raises).
    ``torch.autocast`` does not change it: it computes in the dtype of q, k, v (fp32
    accumulation) and returns lse in fp32, on every path. Under ``torch.compile`` a call with
    a ``BlockMap`` traces without graph break (``fullgraph=True`` works); with a mask object
    the map compilation is one graph break per call (compile the map outside the compiled
    region to avoid it). Meta tensors give shapes only (mask objects without tensors, or a
    BlockMap moved to "meta").
    """
    if q_offset is None:  # every layer of a decode step: replay its recorded launch
        if type(mask) is BlockMap:
            done = replay_decode(mask, q, k, v, scale, softcap, deterministic, return_lse)
        else:
            done = replay_unmasked(q, k, v, mask, scale, softcap, deterministic, return_lse)
        if done is not None:
            return done
    q, k, v = _check_tensors(q, k, v)
    scale = _check_scale(scale, q.shape[-1])
    softcap = _check_softcap(softcap)
    deterministic = _check_deterministic(deterministic)
    lq, lk = q.shape[2], k.shape[2]
    if lq <= MAX_Q and type(mask) is not BlockMap:  # a short block seeing every key, or causal rows, needs no map
        offset = resolve_q_offset(lq, lk, q_offset)
        if sees_every_key(mask, lq, lk, offset):
            done = unmasked_attention(q, k, v, scale, softcap)
        elif (end := causal_end(mask, lq, lk, offset)) is not None:  # the keys after the last row's end: never read
            done = unmasked_attention(q, k, v, scale, softcap, causal=lq > 1, keys=end)
        else:
            done = None
        if done is not None:
            return done if return_lse else done[0]
    bm = _block_map(mask, q, k, q_offset)
    out, lse = masked_attention(q, k, v, bm, scale, softcap, deterministic)
    return (out, lse) if return_lse else out


def attention_after_starts(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_start: torch.Tensor, *,
                           scale: float | None = None, softcap: float | None = None):
    """``attention_between(q, k, v, kv_start=kv_start, ...)``: batch row ``b`` sees every key from
    ``kv_start[b]`` on (left padding before it). The transformers plug-in's decode steps over
    left-padded batches use it."""
    return attention_between(q, k, v, kv_start=kv_start, scale=scale, softcap=softcap)


def attention_between(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, kv_start: torch.Tensor | None = None,
                      kv_end: torch.Tensor | None = None, causal: bool = False, scale: float | None = None,
                      softcap: float | None = None):
    """``attention`` where batch row ``b`` sees every key of [kv_start[b], kv_end[b]) (either bound
    or both, or neither: [0, Lk); left padding before, a static cache's unwritten slots after), and
    with ``causal=True`` query row ``r`` only those before ``kv_end[b] - (Lq - 1 - r)`` (decoding
    several tokens: the last row sees up to the end, each earlier row one key less), for short query
    blocks without a map (``kernels/unmasked_decode.py``): out (B, Hq, Lq, D), or None where that
    path does not apply (a gradient may flow, meta or functorch-wrapped tensors, CPU without the
    interpreter, more than 64 query rows); the caller then passes its mask to ``attention``.
    q: (B, Hq, Lq, D), k/v: (B, Hkv, Lk, D), kv_start / kv_end: (B,) int32 on q's device. Inside
    torch.compile it is one custom op (the plug-in's static-cache steps: ``kv_end`` = the last
    new token's position + 1)."""
    q, k, v = _check_tensors(q, k, v)
    scale = _check_scale(scale, q.shape[-1])
    softcap = _check_softcap(softcap)
    for name, t in (("kv_start", kv_start), ("kv_end", kv_end)):
        if t is not None and not (isinstance(t, torch.Tensor) and t.shape == (q.shape[0],)
                                  and t.dtype == torch.int32 and t.device == q.device):
            raise ValueError(f"{name}: expected a ({q.shape[0]},) int32 tensor on {q.device}, got "
                             f"{getattr(t, 'shape', type(t).__name__)}")
    if not isinstance(causal, bool):
        raise TypeError(f"causal: expected a bool, got {type(causal).__name__}")
    if q.shape[2] > MAX_Q:
        return None
    done = unmasked_attention(q, k, v, scale, softcap, kv_start=kv_start, kv_end=kv_end,
                              causal=causal and q.shape[2] > 1)
    return None if done is None else done[0]


def _check_tensors(q, k, v):
    # the common case in one expression (a decode step calls this per layer); anything off
    # takes the checks below, which name what is wrong
    if isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor) and isinstance(v, torch.Tensor):
        qs, ks = q.shape, k.shape
        if (len(qs) == 4 and len(ks) == 4 and ks == v.shape and q.dtype in _DTYPES and q.dtype == k.dtype == v.dtype
                and ks[0] == qs[0] and ks[3] == qs[3] and 16 <= qs[3] <= 256 and ks[1] != 0 and qs[1] % ks[1] == 0
                and qs[0] != 0 and qs[2] != 0 and ks[2] != 0 and q.device == k.device == v.device):
            return q, k, v
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{name}: expected 4 dims (B, H, L, D), got shape {tuple(t.shape)}")
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name}: expected float16, bfloat16 or float32, got {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v: expected one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v: expected one device, got {q.device}, {k.device}, {v.device}")
    b, hq, lq, d = q.shape
    if k.shape != v.shape:
        raise ValueError(f"k, v: expected the same shape, got {tuple(k.shape)} and {tuple(v.shape)}")
    if k.shape[0] != b:
        raise ValueError(f"k: expected batch {b} like q, got {k.shape[0]}")
    if k.shape[-1] != d:
        raise ValueError(f"k, v: expected head dim {d} like q, got {k.shape[-1]}")
    if not 16 <= d <= 256:
        raise ValueError(f"q: head dim must be in [16, 256], got {d}")
    hkv = k.shape[1]
    if hkv == 0 or hq % hkv:
        raise ValueError(f"k: query heads ({hq}) must be a multiple of key/value heads ({hkv})")
    if lq == 0 or k.shape[2] == 0 or b == 0:
        raise ValueError(f"q, k: expected non-empty batch and sequences, got q {tuple(q.shape)}, k {tuple(k.shape)}")
    return q, k, v


def _check_scale(scale, d):
    if scale is None:
        return default_scale(d)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"scale: expected a float, got {type(scale).__name__}")
    if not math.isfinite(scale):
        raise ValueError(f"scale: expected a finite float, got {scale}")
    return float(scale)


def _check_softcap(softcap):
    if softcap is None:
        return None
    if isinstance(softcap, bool) or not isinstance(softcap, (int, float)):
        raise TypeError(f"softcap: expected a positive float or None, got {type(softcap).__name__}")
    if not (softcap > 0 and math.isfinite(softcap)):
        raise ValueError(f"softcap: expected a finite positive float or None (None: no capping), got {softcap}")
    return float(softcap)


def _check_deterministic(deterministic):
    if deterministic is None:
        return torch.are_deterministic_algorithms_enabled()
    if not isinstance(deterministic, bool):
        raise TypeError(f"deterministic: expected True, False or None, got {type(deterministic).__name__}")
    return deterministic


def _block_map(mask, q, k, q_offset) -> BlockMap:
    b, hq, lq, _ = q.shape
    lk = k.shape[2]
    if mask is None:
        mask = _FULL
    if isinstance(mask, BlockMap):
        bm = mask
        if (bm.q_len, bm.kv_len) != (lq, lk):
            raise ValueError(f"mask: BlockMap compiled for q_len={bm.q_len}, kv_len={bm.kv_len}, "
                             f"but q, k have q_len={lq}, kv_len={lk}")
        if q_offset is not None and not _same_offsets(resolve_q_offset(lq, lk, q_offset), bm.q_offset):
            raise ValueError(f"q_offset: BlockMap compiled for q_offset={bm.q_offset}, got {q_offset}")
        if bm.device != q.device:
            raise ValueError(f"mask: BlockMap is on {bm.device}, but q is on {q.device}")
    elif isinstance(mask, Mask):
        if isinstance(q_offset, torch.Tensor) and q_offset.numel() not in (1, b):
            resolve_q_offset(lq, lk, q_offset)  # a wrong dtype is a TypeError first
            raise ValueError(f"q_offset: expected one offset per batch row ({b}), got {q_offset.numel()}")
        bm = _mask_block_map(mask, lq, lk, q_offset, q.device)
    else:
        raise TypeError(f"mask: expected a maskattn Mask, a BlockMap or None, got {type(mask).__name__}")
    if bm.batch not in (1, b):
        raise ValueError(f"mask: describes {bm.batch} batch rows, but q has batch {b}")
    if bm.heads not in (1, hq):
        raise ValueError(f"mask: describes {bm.heads} heads, but q has {hq} query heads")
    return bm


def _same_offsets(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = (torch.as_tensor(x).to("cpu", torch.int64).reshape(-1) for x in (a, b))
        return a.shape == b.shape and bool(torch.equal(a, b))
    return a == b


def mask_block_map(mask: Mask, lq: int, lk: int, q_offset, device: torch.device) -> BlockMap:
    """The (cached) map of ``mask`` for these lengths on ``device``. Host work (syncs, Python over
    the mask tree): call it outside torch.compile's tracing, or through ``_mask_block_map``."""
    dev = mask.device
    if dev is not None and dev != device:
        raise ValueError(f"mask: its tensors are on {dev}, but q is on {device}")
    return _compiled(mask, lq, lk, resolve_q_offset(lq, lk, q_offset), device)


# host work (syncs, Python over the mask tree): the one graph break of a mask object
_mask_block_map = torch.compiler.disable(mask_block_map)


def _compiled(mask: Mask, lq: int, lk: int, q_offset: int, device: torch.device) -> BlockMap:
    """compile_mask with a small per-object cache, so a training loop passing the same mask
    every step compiles it once. Meta inputs get a map built on CPU and moved to "meta"."""
    cache = mask.__dict__.setdefault("_maskattn_cache", OrderedDict())
    key = (lq, lk, tuple(q_offset.tolist()) if isinstance(q_offset, torch.Tensor) else q_offset, str(device))
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    # a short query block gets a query tile of its own size, so that its tiles are not ragged and
    # can be FULL (a 64-token tree over a long prefix: the prefix tiles need no bitmaps)
    block_q = 128 if lq > 64 else max(16, 1 << (lq - 1).bit_length())
    if device.type == "meta":
        if mask.device is not None:
            raise ValueError("mask: holds meta tensors, which cannot be compiled; on meta inputs use a mask "
                             "without tensors or a BlockMap compiled elsewhere and moved with .to('meta')")
        bm = compile_mask(mask, lq, lk, q_offset=q_offset, device="cpu", block_q=block_q).to(device)
    else:
        bm = compile_mask(mask, lq, lk, q_offset=q_offset, device=device, block_q=block_q)
    cache[key] = bm
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return bm

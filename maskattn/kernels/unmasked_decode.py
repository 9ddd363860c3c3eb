"""Decoding without a map: ``attention(q, k, v)`` (``mask=None``) and other short query blocks that
see every key (or every key of a per-row range), without a BlockMap.

With no mask every query row sees every key (so does ``causal()`` for one new token at the
default offset, and any mask that ``sees_every_key``). A decode step given a mask object gets a new map
every step (the key count grows by one), and with the map a new launch recorded on it
(``decode._DecodePlan``): in Hugging Face ``generate`` with a dynamic cache, the mask function
and each step's first attention call took 554 and 350 us of host time per step against SDPA's
116 and 92 (session 16, H200 host), where SDPA needs no mask at all.

Here nothing depends on a map. ``decode._decode_split`` runs in its ``DENSE`` mode: key blocks
``[0, ceil(Lk / BLOCK_N))``, none masked but the last, which is cut at ``Lk``; its split count
does not depend on ``Lk``. The first call with a given layout records its launch
(``decode.split_kv``), and every later call - every layer of every step - replays it with its
own tensors, K / V strides and key count (``relaunch.Relaunch``'s int slots). Plans are keyed on
how Triton specialises those integers (the value 1, divisibility by 16, the 32-bit range) and on
whether the strides keep the copy engine's 16-byte alignment, never on their values.

Causal rows in the same mode (``CAUSAL_ROWS``): decoding several tokens under ``causal()``, query
row r sees the keys before the range's end minus Lq - 1 - r, the last row all of them. The blocks
below the first row's end run unmasked, the few from there to the end (at most
ceil((Lq - 1) / BLOCK_N) + 1) and the one holding a row's first key are masked per row. ``attention``
takes this path for ``causal()`` at any int offset whose last row ends at or before the last key
(``Mask._causal_end``: bands that are causal on these rows, and their ANDs / ORs, e.g.
``causal() & sliding_window(W)`` with the window reaching key 0), reading only the keys before
that end.

Per-row key ranges in the same mode: each batch row's first key (``KV_STARTS``: left padding
before it) and key count (``KV_ENDS``: a static cache's unwritten slots after it), through
``api.attention_between``, which the transformers plug-in calls for left-padded decode batches
and for one-token static-cache steps inside torch.compile. Paged caches (``paged_attention``) take the path
when the mask shows every request all of its ``kv_lens[b]`` keys (``causal()``, the default, for
one new token): the kernel gathers the pages through the table and stops at each request's key
count. The table and the per-row bounds are tensors of each replay, the table's width an integer.

Forward only: ``op.unmasked_attention`` sends eager calls that need no gradient here (CUDA, or
CPU under the interpreter) when ``applies``; other calls compile their mask (the full mask for
``mask=None``) as before.
"""
from __future__ import annotations

import functools

import torch

from ..masks.base import Mask
from . import decode, flash_decode_sm90, plans
from .config import default_scale
from .tma import ensure_allocator, padded_dim, tma_operand

_PLANS: dict = {}  # key (``_plan_key``) -> decode._DecodePlan
_MAX_PLANS = 64


def applies(q: torch.Tensor, k: torch.Tensor) -> bool:
    """Is (q (B, Hq, Lq, D), k (B, Hkv, Lk, D)) a short query block for the portable split-KV
    kernel: ``Lq <= decode.MAX_Q`` and too few packed rows or units for the Hopper packed kernel
    (``flash_decode_sm90``), which needs a map? Those larger blocks keep the map path."""
    b, hq, lq, _ = q.shape
    hkv = k.shape[1]
    packed = hq // hkv * lq
    return lq <= decode.MAX_Q and (packed < flash_decode_sm90.MIN_PACKED_ROWS
                                   or b * hkv * flash_decode_sm90.row_blocks(packed) < flash_decode_sm90.MIN_UNITS)


def sees_every_key(mask, q_len: int, kv_len: int, q_offset) -> bool:
    """Does ``mask`` let every query row see every key at these lengths: None, or a mask without
    tensors (nothing to check against the inputs) that allows every pair at the int ``q_offset``
    (``Mask._every_pair``: e.g. ``causal()`` for one new token at the default offset)? Then the
    call needs no map."""
    if mask is None:
        return True
    return (isinstance(mask, Mask) and isinstance(q_offset, int) and mask._every_pair(q_len, kv_len, q_offset)
            and mask.device is None)


def causal_end(mask, q_len: int, kv_len: int, q_offset) -> int | None:
    """For a block whose ``mask`` (without tensors) allows query row r exactly the keys
    [0, E - (q_len - 1) + r) at the int ``q_offset`` (``Mask._causal_end``: e.g. ``causal()``
    when decoding several tokens, or one token before the cache's end), that E (<= kv_len), else
    None. Then the call needs no map: the keys [0, E) with ``causal_rows``."""
    if isinstance(mask, Mask) and isinstance(q_offset, int) and mask.device is None:
        return mask._causal_end(q_len, kv_len, q_offset)
    return None


@functools.lru_cache(maxsize=256)  # every layer of a decode step asks with the same integers
def _classes(ints: tuple, element_size: int) -> tuple:
    # how Triton specialises an integer argument (the value 1, divisibility by 16, 32-bit range),
    # and for the six strides whether they keep a row 16-byte aligned (the tensor descriptors);
    # the key count and table width are no strides: their alignment must not split plans
    return tuple((x == 1, x % 16 == 0, i < 6 and (x * element_size) % 16 == 0, -2**31 <= x < 2**31)
                 for i, x in enumerate(ints))


def _ints(k: torch.Tensor, v: torch.Tensor, page_table) -> tuple:
    """The values of ``decode.DENSE_INT_SLOTS``: K and V strides over their first three dims, the
    (logical) key count and the page table width (``page_table``: a paged cache's, or None)."""
    if page_table is None:
        return (*k.stride()[:3], *v.stride()[:3], k.shape[2], 0)
    width = page_table.shape[1]
    return (*k.stride()[:3], *v.stride()[:3], width * k.shape[2], width)


_NO_EXTRA = (None, None, None)


def _plan_key(q, k, v, scale: float, softcap, ints: tuple, extra=_NO_EXTRA, causal_rows: bool = False):
    """Everything a recorded launch depends on besides the integers it takes per call (``ints``:
    ``_ints(k, v, page_table)``), or None where nothing is recorded (``plans.replayable``). The
    stream too: a plan's partials and counters serve one stream's calls in order. ``extra``:
    (page_table, kv_start, kv_end) as for ``forward`` (with a page table, k and v are page pools:
    their page size counts, their page count does not); ``causal_rows`` as for ``forward``."""
    if not plans.replayable(q):
        return None
    ks, vs = k.shape, v.shape
    key = (plans.layouts(q), ks[1], ks[3], vs[1], vs[3], k.dtype, v.dtype, k.stride(3), v.stride(3),
           k.data_ptr() % 16, v.data_ptr() % 16, _classes(ints, k.element_size()), q.device, scale,
           softcap, causal_rows, torch._C._cuda_getCurrentRawStream(q.device.index),
           extra if extra is _NO_EXTRA else tuple(None if t is None else (t.dtype, t.data_ptr() % 16) for t in extra))
    return key + ((ks[0], vs[0]) if extra[0] is None else (ks[2],))


def recorded_any() -> bool:
    """Has any launch been recorded (cheap: every unmasked call asks first)?"""
    return bool(_PLANS)


def replay_recorded(q, k, v, scale: float | None, softcap, fresh_lse: bool = True, causal_rows: bool = False):
    """(out, lse) of the plan recorded for a call with 4-D tensors (on one device:
    ``op._replayable_call``) laid out like these (key counts may differ), this scale (None: the
    default), softcap and ``causal_rows``, run on these tensors, their strides and key count; or
    None where no such plan is recorded."""
    if not _PLANS or q.shape[2] > decode.MAX_Q or k.shape[2] != v.shape[2] or k.shape[2] == 0:
        return None
    ints = _ints(k, v, None)
    plan = _PLANS.get(_plan_key(q, k, v, default_scale(q.shape[-1]) if scale is None else scale, softcap, ints,
                                causal_rows=causal_rows))
    return None if plan is None else plan(q, k, v, fresh_lse=fresh_lse, ints=ints)


def forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, softcap: float | None,
            page_table: torch.Tensor | None = None, kv_start: torch.Tensor | None = None,
            kv_end: torch.Tensor | None = None, causal_rows: bool = False):
    """q: (B, Hq, Lq, D), k/v: (B, Hkv, Lk, D) (checked by the caller; ``applies``) -> out
    (B, Hq, Lq, D) in q's dtype and lse (B, Hq, Lq) fp32, attending to every key, or with
    ``kv_start`` / ``kv_end`` ((B,) int32, either or both) batch row b to its keys
    [kv_start[b], kv_end[b]) (left padding before, a paged cache's kv_lens: unwritten keys
    after; masked keys never reach an output, NaN included). With ``causal_rows``, query row r
    stops Lq - 1 - r keys before that end (causal, the last row at the end: decoding several
    tokens). With ``page_table`` (B, max_pages)
    int32, k/v are page pools (num_pages, Hkv, page_size, D) (checked by ``paged_attention``).
    Records the launch for later calls where they can replay it."""
    extra = (page_table, kv_start, kv_end)
    ints = _ints(k, v, page_table)
    key = _plan_key(q, k, v, scale, softcap, ints, extra, causal_rows)
    plan = _PLANS.get(key) if key is not None else None
    if plan is not None:
        return plan(q, k, v, ints=ints, extra=tuple(t for t in extra if t is not None))
    q_in, k_in, v_in = q, k, v
    b, hq, lq, d = q.shape
    hkv = k.shape[1]
    out = torch.empty((b, hq, lq, d), dtype=q.dtype, device=q.device)
    lse = torch.empty((b, hq, lq), dtype=torch.float32, device=q.device)
    ensure_allocator()
    if page_table is None:
        d_tma, lk = padded_dim(d, q.dtype), k.shape[2]
        k, v = (tma_operand(t, d_tma) for t in (k, v))
    else:  # pages are gathered row by row (no descriptors): any head dim, unit last stride
        d_tma, lk = d, page_table.shape[1] * k.shape[2]
        k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (k, v))
    if q.shape[-1] != d_tma or q.stride(-1) != 1:  # rows of q are read with a unit last stride
        q = tma_operand(q, d_tma)
    record = key is not None and q is q_in and k is k_in and v is v_in  # inputs used as given
    plan = decode.split_kv(q, k, v, out, lse, None, 0, 0, hq // hkv, lk, page_table, scale, softcap, 16, 128, record,
                           kv_start=kv_start, kv_end=kv_end, causal_rows=causal_rows)
    if plan is not None:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        _PLANS[key] = plan
    return out, lse

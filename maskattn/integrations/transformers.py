"""Hugging Face transformers plug-in: ``attn_implementation="maskattn"``.

Importing this module (or calling ``register()``) registers the name ``"maskattn"`` twice,
once with each of transformers' two interfaces:

* ``transformers.AttentionMaskInterface``: ``mask_function``. The model's masking code
  (``create_causal_mask``, ``create_sliding_window_causal_mask``, ``create_bidirectional_mask``,
  ...) calls it with a *mask function* (transformers' closures: causal, sliding window,
  bidirectional, chunked, packed sequences, block overlays, user ``or/and_mask_function``s), a 2-D
  padding mask and the cache's offsets. It returns a ``ModelMask``: a compact maskattn ``Mask``
  (``causal() & padding(...)``, ``sliding_window(W - 1)``, ``documents(...)``, ...) plus the
  ``q_offset`` that places the queries among the keys. It never builds a dense ``(B, 1, Lq, Lk)``
  tensor. Without this mask function transformers would pass ``attention_mask=None`` and drop
  causality and padding.
* ``transformers.AttentionInterface``: ``attention_function``. It takes transformers' layout
  (``query (B, Hq, Lq, D)``, ``key/value (B, Hkv, Lk, D)`` with unrepeated KV heads), honours
  ``scaling`` and ``softcap`` (Gemma 2), refuses ``dropout > 0`` while ``module.training``, runs
  ``maskattn.attention`` and returns ``(B, Lq, Hq, D)`` (contiguous) and ``None`` for the weights.

Usage::

    import maskattn.integrations.transformers  # registers "maskattn"
    model = AutoModelForCausalLM.from_pretrained(name, attn_implementation="maskattn")

Positions. transformers describes a layer's keys by ``kv_offset`` (the absolute position of key
column 0: non-zero once a sliding-window cache has dropped old keys) and the queries by
``q_offset`` (the absolute position of query row 0, i.e. the tokens already in the cache).
maskattn puts key column ``c`` at position ``c`` and query row ``r`` at ``q_offset + r``, so
the model's masks are built in the frame of the KV tensor the layer sees: maskattn
``q_offset = q_offset_hf - kv_offset``, padding and packed-sequence tensors are sliced to the
columns ``kv_offset .. kv_offset + kv_len - 1``. Windows and causality only depend on ``i - j``,
so they are unchanged. Static caches hand the layer all ``max_cache_len`` slots; the slots not
yet written are later positions, which causality (or the 2-D mask padded with ``False``, as
transformers does) excludes.

User masks. A maskattn mask may be passed straight into a model's forward, as
``attention_mask=`` (not into ``generate``, which only takes 2-D masks). Its positions are
absolute token positions: ``0`` is the first token of the sequence (of the cache, if any), the
new tokens sit at ``past_len .. past_len + Lq - 1`` (so ``maskattn.tree(parents,
prefix=past_len)`` verifies a speculative tree against a cache of ``past_len`` tokens).

* ``attention_mask=M`` (a ``Mask``): every layer uses ``M & <the layer's own pattern>``: causal
  for causal layers, ``sliding_window(W - 1)`` for sliding-window layers, the full pattern for
  bidirectional (encoder) layers and the window ``|i - j| <= W`` for their local layers, chunks
  for chunked layers. A user mask can only *remove* pairs: a decoder stays causal, a local layer
  stays local. No 2-D padding mask exists in that call (the ``attention_mask`` slot holds
  ``M``); put padding into ``M`` (``M & maskattn.padding(attn_2d)``). transformers' packed
  sequence detection from ``position_ids`` is also off whenever ``attention_mask`` is given:
  use ``maskattn.documents(...)`` in ``M`` for packed documents.
* ``attention_mask=override(M)``: every layer uses exactly ``M``, like a 4-D custom mask in
  transformers (which also bypasses sliding windows): e.g. ``override(maskattn.prefix_lm(P))``
  for a bidirectional prefix in a decoder.

When a layer's keys do not start at position 0 (sliding-window caches) or the KV tensor is
longer than the sequence (static caches), the user mask is re-framed (``_Reframed``): evaluated
at the shifted positions, keys past the sequence excluded.

A plain ``Mask`` passes transformers' mask preprocessing only if it has ``ndim`` and ``shape``
like a tensor; ``register()`` gives the ``Mask`` class these two read-only attributes (``ndim = 4``,
``shape = (batch_size, num_heads, -1, -1)``: lengths unknown) when it lacks them.

A 4-D mask tensor (bool, or float 0 / -inf), which transformers passes through untouched,
reaches the attention function and runs as ``maskattn.dense`` (O(Lq * Lk), as with sdpa).

Costs. The mask is compiled into a BlockMap once per forward call and layer type (all layers of a
type share it), inside the mask function. Except when a short query block after a cache (at most 64
rows, fewer than the keys: decoding) may attend to every key of the layer (causal or a window that
reaches back to key 0, no padding), or to every key after its row's left padding: then nothing is
compiled and the layers decode without a map, replaying one recorded launch at every step
(``kernels/unmasked_decode.py``; ``maskattn.attention`` without a mask, or
``api.attention_between`` with each row's first key), as sdpa runs without a mask there. So does a
causal block of up to 64 tokens whose last token may see every key (``causal_rows``: each token
sees the keys up to its own position; speculative verification, short chunks), and a causal block
whose position is a tensor (a static cache's decode step): its keys are those before the last
token's position + 1 (``api.attention_between(kv_end=..., causal=...)``, after each row's left
padding where a 2-D mask only pads on the left), a tensor op (no host sync without a 2-D mask). Masks
without tensors (causal, windows, and a user mask ANDed with one) are the same objects from call to
call, so their BlockMaps stay cached: a training loop with fixed lengths compiles once. Keep user
masks on the model's device, or they are copied (and recompiled) every call. Patterns the
translation does not know (custom ``or/and_mask_function``s, image-token overlays) are kept exact as
a per-element leaf, which costs O(Lq * Lk) element evaluations where the other factors leave tiles
open.

Not covered: attention sinks (``s_aux``, GPT-OSS), ``position_bias`` (T5-style biases),
additive float masks with values other than 0 / -inf, attention dropout in training, returning
attention weights (``output_attentions``), keys and values of different head dims (MLA), paged
attention / continuous batching, maskattn masks or BlockMaps passed to ``generate``.

torch.compile. The mask function's host part (``_mask_on_host``: building and compiling the mask)
is wrapped in ``torch.compiler.disable``: a compiled model graph-breaks there, once per forward
call and layer type. The attention function traces (the attention is a custom op) with the
``ModelMask``'s BlockMap, so the layers themselves add no graph breaks; decode steps left without
a mask (see Costs) trace as ``maskattn::unmasked_forward``, a custom op that needs no map. A
causal step of up to 64 tokens over a static cache without a 2-D mask skips the host part: its
ModelMask is built from the tokens' position, a tensor (``kv_end``: the keys before the last
token's position + 1), so a model compiled whole has no graph break at all. ``generate`` with a
static cache masks each step eagerly and passes the ModelMask into the compiled step; every step's
ModelMask has the same form (``kv_end``, and ``kv_start`` with left padding; no map, at the last
step too), so the step compiles once. Tested: ``torch.compile(model)`` in the default mode (inductor), logits equal to
eager, on CPU and (GPU-marked test) on CUDA; the static-cache step under ``fullgraph=True`` and
static-cache ``generate``'s compiled step (one graph, fullgraph) on CPU.
"""
from __future__ import annotations

import functools
import inspect
import warnings

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers import masking_utils as _mu

import maskattn
from maskattn.api import attention_between, mask_block_map
from maskattn.block_map import BlockMap
from maskattn.kernels.decode import MAX_Q
from maskattn.kernels.unmasked_decode import causal_end, sees_every_key
from maskattn.masks.band import Band
from maskattn.masks.base import And, Mask, Not, Or
from maskattn.masks.full import Full
from maskattn.masks.grid import EMPTY, PARTIAL, TileGrid

NAME = "maskattn"

__all__ = ["NAME", "register", "mask_function", "attention_function", "ModelMask", "Override", "override",
           "translate"]


# ---------------------------------------------------------------------------------------------
# Objects that travel through the model as ``attention_mask``
# ---------------------------------------------------------------------------------------------
class ModelMask:
    """The mask of one layer type for one forward call, as the "maskattn" mask function returns
    it and the attention function consumes it.

    ``mask``: a maskattn ``Mask`` in the frame of the layer's KV tensor (key column ``c`` is
    position ``c``); ``q_offset``: position of query row 0 in that frame (an int, or a (B,) int32
    tensor for a step at a tensor position: ``kv_end`` - ``q_len``); ``q_len`` / ``kv_len``:
    the lengths transformers announced (checked against q and k); ``block_map``: the mask
    compiled for them by the mask function (None on "meta"), so that the attention layers do
    no host work and trace under ``torch.compile`` without graph breaks. It quacks like the 4-D mask
    tensor transformers expects (``ndim``, ``shape``, ``dtype``, ``device``, ``contiguous()``,
    ``to()``), so ``generate`` with a static cache can pass it back into the model, whose
    masking code then hands it to the mask function again, which returns it unchanged.
    """

    ndim = 4
    dtype = torch.bool

    def __init__(self, mask: Mask, q_offset: int, q_len: int, kv_len: int, batch_size: int, device,
                 block_map: BlockMap | None = None, unmasked: bool = False, kv_start: torch.Tensor | None = None,
                 kv_end: torch.Tensor | None = None, causal_rows: bool = False):
        self.mask, self.q_offset, self.q_len, self.kv_len = mask, q_offset, q_len, kv_len
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.block_map = block_map
        # nothing compiled: every query sees every key (at or after its row's ``kv_start``, (B,)
        # int32, left padding before it): the layers decode without a map
        self.unmasked, self.kv_start = unmasked, kv_start
        # a step over a static cache: the keys before ``kv_end`` ((B,) int32, the last token's
        # position + 1), without a map (``mask`` and a (B,) tensor
        # ``q_offset`` are the same mask for the calls that cannot take that path)
        self.kv_end = kv_end
        # several new tokens without a map: query row r sees the keys up to its own position
        # (those before kv_end - (q_len - 1 - r), or the layer's kv_len without kv_end; after kv_start)
        self.causal_rows = causal_rows

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.batch_size, 1, self.q_len, self.kv_len))

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return 4

    def contiguous(self, *args, **kwargs) -> "ModelMask":
        return self

    def to(self, *args, **kwargs) -> "ModelMask":
        """Only a device move matters (dtypes are ignored)."""
        device = kwargs.get("device")
        for a in args:
            if isinstance(a, (str, torch.device)):
                device = a
        if device is None or torch.device(device) == self.device:
            return self
        bm = None if self.block_map is None else self.block_map.to(device)
        starts, ends, q_off = (None if t is None else t.to(device) if isinstance(t, torch.Tensor) else t
                               for t in (self.kv_start, self.kv_end, self.q_offset))
        return ModelMask(self.mask.to(device), q_off, self.q_len, self.kv_len, self.batch_size, device, bm,
                         self.unmasked, starts, ends, self.causal_rows)

    def __repr__(self) -> str:
        return (f"ModelMask({self.mask!r}, q_offset={self.q_offset}, q_len={self.q_len}, kv_len={self.kv_len}, "
                f"batch_size={self.batch_size})")


class Override:
    """A user mask that replaces the model's own pattern in every layer (see ``override``)."""

    ndim = 4
    dtype = torch.bool

    def __init__(self, mask: Mask):
        if not isinstance(mask, Mask):
            raise TypeError(f"override: expected a maskattn Mask, got {type(mask).__name__}")
        self.mask = mask

    @property
    def shape(self):
        return (self.mask.batch_size, self.mask.num_heads, -1, -1)

    @property
    def device(self):
        return self.mask.device

    def contiguous(self, *args, **kwargs) -> "Override":
        return self

    def __repr__(self) -> str:
        return f"override({self.mask!r})"


def override(mask: Mask) -> Override:
    """Pass ``attention_mask=override(mask)`` to a model's forward to use exactly ``mask`` in every
    layer, ignoring the model's causal / sliding-window / chunked pattern (like a 4-D custom mask
    in transformers). A plain ``attention_mask=mask`` is ANDed with each layer's pattern instead."""
    return Override(mask)


# ---------------------------------------------------------------------------------------------
# Masks used by the translation
# ---------------------------------------------------------------------------------------------
_FULL = maskattn.full()


def _tighter(a, b):
    return b if a is None else a if b is None else min(a, b)


@functools.lru_cache(maxsize=256)
def _band(left: int | None, right: int | None) -> Mask:
    """``i - left <= j <= i + right`` (None: unbounded). One object per window, so its compiled
    BlockMaps are cached across forward calls and layers."""
    if left is None and right is None:
        return _FULL
    if left is None and right == 0:
        return maskattn.causal()
    if left is not None and right is not None and left >= 0 and right >= 0:
        return maskattn.sliding_window(left, right)
    return Band(left, right, f"band(left={left}, right={right})")


_CAUSAL = _band(None, 0)  # built here, not inside a traced call (Dynamo skips lru_cache wrappers)


def _and(a: Mask, b: Mask) -> Mask:
    if isinstance(a, Full):
        return b
    if isinstance(b, Full):
        return a
    if isinstance(a, Band) and isinstance(b, Band):
        return _band(_tighter(a.left, b.left), _tighter(a.right, b.right))
    return a & b


def _or(a: Mask | None, b: Mask) -> Mask:
    if a is None:
        return b
    if isinstance(a, Full) or isinstance(b, Full):
        return _FULL
    return a | b


def _relative(m: Mask) -> bool:
    """True if the mask depends on ``i - j`` only (so shifting both positions changes nothing)."""
    if isinstance(m, (Band, Full)):
        return True
    if isinstance(m, (And, Or, Not)):
        return all(_relative(c) for c in m._children())
    return False


class _Frame:
    """Where the kernel's keys and queries sit: kernel key column ``c`` is transformers position
    ``c + kv_offset``; kernel query row ``r`` is kernel position ``q_offset + r``."""

    def __init__(self, batch_size: int, q_len: int, kv_len: int, q_offset: int, kv_offset: int, device,
                 use_vmap: bool = False):
        self.batch_size, self.q_len, self.kv_len = batch_size, q_len, kv_len
        self.q_offset, self.kv_offset = q_offset, kv_offset  # q_offset in the kernel frame
        self.device = torch.device(device)
        self.use_vmap = use_vmap  # transformers' hint: user functions may not be index-based

    def columns(self, per_position: torch.Tensor, fill) -> torch.Tensor:
        """(B, L) values indexed by transformers position -> (B, kv_len) per key column (possibly
        a strided view: ``documents`` makes its ids contiguous, ``_padding`` its flags)."""
        t = per_position.to(self.device)
        need = self.kv_offset + self.kv_len
        if t.shape[-1] < need:
            t = torch.nn.functional.pad(t, (0, need - t.shape[-1]), value=fill)
        t = t[:, self.kv_offset:need]
        if t.shape[0] != self.batch_size:
            t = t.expand(self.batch_size, -1)
        return t


class _FunctionMask(Mask):
    """Any index-based transformers mask function ``fn(batch, head, q_idx, kv_idx)``, evaluated
    element by element inside the tiles the rest of the mask leaves open (its tiles are all
    PARTIAL). The fallback for patterns the translation does not know (custom
    ``or/and_mask_function``s, image-token overlays, ...)."""

    def __init__(self, fn, frame: _Frame):
        self.fn, self.frame = fn, frame
        self._batch = frame.batch_size
        self.name = f"transformers_mask_function({getattr(fn, '__qualname__', type(fn).__name__)})"

    def _allowed(self, b, h, i, j, q_offset):
        fr = self.frame
        q_end = fr.q_offset + fr.q_len  # valid query positions: [.., q_end)
        inside = (i < q_end) & (j >= 0) & (j < fr.kv_len)
        ii = i.clamp(0, max(q_end - 1, 0)) + fr.kv_offset
        jj = j.clamp(0, fr.kv_len - 1) + fr.kv_offset
        hh = torch.zeros_like(h)
        # index-based functions broadcast over the index tensors; others go through vmap, as in
        # transformers' sdpa_mask (use_vmap): try the one transformers would use first
        first, second = (_vmap_eval, _broadcast_eval) if fr.use_vmap else (_broadcast_eval, _vmap_eval)
        try:
            out = first(self.fn, b, hh, ii, jj)
        except Exception:
            out = second(self.fn, b, hh, ii, jj)
        return torch.as_tensor(out, device=i.device).to(torch.bool) & inside

    def _tile_classes(self, grid: TileGrid):
        return torch.full((1, 1, grid.n_q_tiles, grid.n_k_tiles), PARTIAL, dtype=torch.int8, device=grid.device)

    def __repr__(self):
        return self.name


def _broadcast_eval(fn, b, h, i, j):
    return fn(b, h, i, j)


def _vmap_eval(fn, b, h, i, j):
    shape = torch.broadcast_shapes(b.shape, h.shape, i.shape, j.shape)
    flat = [t.expand(shape).reshape(-1) for t in (b, h, i, j)]
    from torch._dynamo._trace_wrapped_higher_order_op import TransformGetItemToIndex

    with TransformGetItemToIndex():
        out = torch.vmap(fn)(*flat)
    return out.reshape(shape)


class _Reframed(Mask):
    """A user mask written over positions ``0 .. total - 1`` of the whole sequence, seen from a KV
    tensor whose column ``c`` is position ``c + shift`` and that may hold slots past ``total``
    (static caches): those slots are never attended."""

    def __init__(self, inner: Mask, shift: int, total: int):
        self.inner, self.shift, self.total = inner, shift, total

    def _children(self):
        return (self.inner,)

    def _check_lengths(self, q_len, kv_len, q_offset):
        self.inner._check_lengths(q_len, self.total, q_offset + self.shift)

    def _moved(self, device):
        return _Reframed(self.inner._moved(device), self.shift, self.total)

    def _allowed(self, b, h, i, j, q_offset):
        jj = j + self.shift
        ok = jj < self.total
        return self.inner._allowed(b, h, i + self.shift, jj.clamp(max=self.total - 1), q_offset + self.shift) & ok

    def _tile_classes(self, grid: TileGrid):
        tq, tk = grid.n_q_tiles, grid.n_k_tiles
        inner_grid = TileGrid(grid.q_len, self.total, grid.q_offset, grid.block_q, grid.block_k, grid.device)
        if self.shift or inner_grid.n_k_tiles > tk:  # tiles do not line up: classify element by element
            return torch.full((1, 1, tq, tk), PARTIAL, dtype=torch.int8, device=grid.device)
        nb, nh = self.inner.batch_size, self.inner.num_heads
        cls = self.inner._tile_classes(inner_grid).expand(nb, nh, tq, inner_grid.n_k_tiles)
        out = torch.full((nb, nh, tq, tk), EMPTY, dtype=torch.int8, device=grid.device)
        out[..., :inner_grid.n_k_tiles] = cls
        if self.total % grid.block_k:  # the tile holding the end of the sequence is never full
            out[..., inner_grid.n_k_tiles - 1].clamp_(max=PARTIAL)
        return out

    def __repr__(self):
        return f"reframed({self.inner!r}, shift={self.shift}, total={self.total})"


# ---------------------------------------------------------------------------------------------
# transformers mask functions -> maskattn masks
# ---------------------------------------------------------------------------------------------
def _kind(fn) -> str | None:
    if getattr(fn, "__module__", None) != _mu.__name__:
        return None
    return getattr(fn, "__qualname__", "").split(".<locals>")[0]


def _nonlocals(fn) -> dict:
    try:
        return inspect.getclosurevars(fn).nonlocals
    except (TypeError, ValueError):
        return {}


def _steps_of_one(position_ids: torch.Tensor, doc_ids: torch.Tensor) -> bool:
    """Within each document, positions go up by exactly one (then per-document positions and
    packed positions differ by a constant, and relative masks are the same on both)."""
    if position_ids.shape[-1] < 2:
        return True
    pos = position_ids.expand(doc_ids.shape[0], -1)
    same_doc = doc_ids[:, 1:] == doc_ids[:, :-1]
    return bool(((pos[:, 1:] - pos[:, :-1] == 1) | ~same_doc).all())


def _documents(doc_ids: torch.Tensor, frame: _Frame) -> Mask:
    ids = frame.columns(doc_ids.long(), fill=-1)
    return maskattn.documents(doc_ids=ids, causal=False)


def _padding(padding_mask: torch.Tensor, frame: _Frame, left_starts: bool = False,
             ends: torch.Tensor | None = None) -> tuple[Mask, torch.Tensor | None]:
    """The padding mask of a 2-D ``attention_mask`` in ``frame``, and with ``left_starts``, where
    every row is left padding then keys (zeros, then ones), each row's first key column as a
    (B,) int32 tensor (else None). ``ends`` ((B,) int32): the keys at or past ``ends[b]`` are cut
    elsewhere (a static cache's step), so they count as keys for both tests. One host sync, as in
    transformers' sdpa_mask."""
    flags = frame.columns(padding_mask.bool(), fill=False)
    kept = flags if ends is None else flags | (torch.arange(frame.kv_len, device=flags.device) >= ends[:, None])
    if left_starts:
        every, left = torch.stack([kept.all(), (kept[:, 1:] >= kept[:, :-1]).all()]).tolist()
    else:
        every, left = bool(kept.all()), False
    if every:  # no padding: nothing to compile
        return _FULL, None
    pad = maskattn.padding(flags.contiguous())
    return pad, ((~kept).sum(1).to(torch.int32) if left else None)


def translate(fn, frame: _Frame) -> Mask:
    """A transformers mask function (closure) -> the equivalent maskattn mask in ``frame``.
    Known closures of ``transformers.masking_utils`` become compact masks; anything else becomes
    a ``_FunctionMask`` leaf (exact, evaluated per element where the other factors allow)."""
    if fn is _mu.causal_mask_function:
        return _band(None, 0)
    if fn is _mu.bidirectional_mask_function:
        return _FULL
    kind, nl = _kind(fn), _nonlocals(fn)
    if kind == "and_masks" and "mask_functions" in nl:
        fns = list(nl["mask_functions"])
        docs = [_nonlocals(f)["packed_sequence_mask"] for f in fns if _kind(f) == "packed_sequence_mask_function"]
        out = _FULL
        for f in fns:
            if docs and _kind(f) == "remap_positions_for_packed_sequence":
                inner = _nonlocals(f)
                t = translate(inner["mask_function"], frame)
                if _relative(t) and _steps_of_one(inner["position_ids"], docs[0]):
                    out = _and(out, t)
                    continue
            out = _and(out, translate(f, frame))
        return out
    if kind == "or_masks" and "mask_functions" in nl:
        out = None
        for f in nl["mask_functions"]:
            out = _or(out, translate(f, frame))
        return _FULL if out is None else out
    if kind == "sliding_window_overlay" and "sliding_window" in nl:
        return _band(int(nl["sliding_window"]) - 1, None)  # kv > q - W
    if kind == "sliding_window_bidirectional_overlay" and "sliding_window" in nl:
        w = int(nl["sliding_window"])
        return _band(w, w)  # |q - kv| <= W
    if kind == "padding_mask_function" and "padding_mask" in nl:
        return _padding(nl["padding_mask"], frame)[0]
    if kind == "packed_sequence_mask_function" and "packed_sequence_mask" in nl:
        return _documents(nl["packed_sequence_mask"], frame)
    if kind == "chunked_overlay" and {"chunk_size", "left_padding"} <= nl.keys():
        chunk, lp = int(nl["chunk_size"]), torch.as_tensor(nl["left_padding"], device=frame.device).long().view(-1, 1)
        pos = torch.arange(frame.kv_len, device=frame.device) + frame.kv_offset
        ids = (pos[None] - lp) // chunk
        ids = (ids - ids.min()).expand(frame.batch_size, -1)  # non-negative ids, same partition
        return maskattn.documents(doc_ids=ids.contiguous(), causal=False)
    if kind == "blockwise_overlay" and "block_sequence_ids" in nl:
        ids = frame.columns(nl["block_sequence_ids"].long(), fill=-1)
        return maskattn.documents(doc_ids=ids, causal=False) & maskattn.padding(ids >= 0)
    return _FunctionMask(fn, frame)


# ---------------------------------------------------------------------------------------------
# The two registered functions
# ---------------------------------------------------------------------------------------------
def _combine(user: Mask, model: Mask) -> Mask:
    """``user & model``, the same object for the same pair (kept on the user's mask, so it lives
    as long as that mask), so that its compiled BlockMaps are reused across forward calls."""
    if isinstance(model, Full):
        return user
    if not isinstance(model, Band):  # built for this call (padding, documents, ...): nothing to reuse
        return user & model
    per_pattern = user.__dict__.setdefault("_transformers_combined", {})
    if model not in per_pattern:
        per_pattern[model] = user & model
    return per_pattern[model]


def _as_int(x) -> int:
    return int(x.item()) if isinstance(x, torch.Tensor) else int(x)


def mask_function(batch_size: int, q_length: int, kv_length: int, q_offset=0, kv_offset=0,
                  mask_function=_mu.causal_mask_function, attention_mask=None, device="cpu", **kwargs) -> ModelMask:
    """The "maskattn" entry of ``transformers.AttentionMaskInterface`` (signature of
    ``transformers.masking_utils.sdpa_mask``). Returns a ``ModelMask``; given a ``ModelMask`` back
    (static-cache generation re-runs the masking code on it) returns it unchanged.

    Building and compiling a mask is host work, a graph break under torch.compile. A causal
    step of up to 64 tokens at a tensor position with keys from position 0 (a static cache's
    decode step, which ``generate`` masks eagerly and then compiles) needs neither: each token
    sees the keys up to its own position, a tensor op, no map (with a 2-D padding mask that only
    pads on the left, also only those after its row's first key; that check is host work)."""
    if isinstance(attention_mask, ModelMask):
        return attention_mask
    if (q_length <= MAX_Q and isinstance(q_offset, torch.Tensor) and q_offset.numel() == 1
            and isinstance(kv_offset, int) and kv_offset == 0 and mask_function is _mu.causal_mask_function
            and not kwargs.get("use_vmap", False)):
        ends = (q_offset.reshape(1).to(device=device, dtype=torch.int32) + q_length).expand(batch_size).contiguous()
        if attention_mask is None:
            return _step_before_ends(ends, q_length, kv_length, batch_size, device)
        if isinstance(attention_mask, torch.Tensor) and attention_mask.dim() == 2:
            step = _padded_step_on_host(attention_mask, ends, q_length, kv_length, batch_size, device)
            if step is not None:
                return step
    return _mask_on_host(batch_size, q_length, kv_length, q_offset, kv_offset, mask_function, attention_mask, device,
                         **kwargs)


def _step_before_ends(ends: torch.Tensor, q_length: int, kv_length: int, batch_size: int, device,
                      pad: Mask = _FULL, starts: torch.Tensor | None = None) -> ModelMask:
    """A causal step's ModelMask without a map: token r of batch row b sees the keys before
    ``ends[b] - (q_length - 1 - r)`` ((B,) int32: the last token's position + 1), from ``starts[b]``
    on where given (``pad``: the same padding as a mask, for calls that cannot take that path)."""
    return ModelMask(_and(_CAUSAL, pad), ends - q_length, q_length, kv_length, batch_size, device, kv_start=starts,
                     kv_end=ends, causal_rows=q_length > 1)


@torch.compiler.disable
def _padded_step_on_host(padding_mask: torch.Tensor, ends: torch.Tensor, q_length: int, kv_length: int,
                         batch_size: int, device) -> "ModelMask | None":
    """``_step_before_ends`` with a 2-D padding mask that only pads on the left of each row's keys
    before ``ends`` (else None: the caller compiles a map). One host sync (``_padding``)."""
    pad, starts = _padding(padding_mask, _Frame(batch_size, q_length, kv_length, 0, 0, device), left_starts=True,
                           ends=ends)
    if pad is not _FULL and starts is None:
        return None
    return _step_before_ends(ends, q_length, kv_length, batch_size, device, pad, starts)


@torch.compiler.disable
def _mask_on_host(batch_size: int, q_length: int, kv_length: int, q_offset, kv_offset, mask_function,
                  attention_mask, device, **kwargs) -> ModelMask:
    """``mask_function``'s general case: the mask built and compiled on the host."""
    q_off_hf, kv_offset = _as_int(q_offset), _as_int(kv_offset)  # a tensor for static caches: read it now
    user = None
    if isinstance(attention_mask, (Mask, Override)):
        user, attention_mask = attention_mask, None
        if kv_length < 0:  # no cache: transformers took the length from the mask's shape, which is unknown
            kv_length = q_length
    elif attention_mask is not None and not (isinstance(attention_mask, torch.Tensor) and attention_mask.dim() == 2):
        raise TypeError(f"maskattn mask function: attention_mask must be None, a 2-D padding mask, a maskattn Mask "
                        f"or override(Mask), got {type(attention_mask).__name__}")
    frame = _Frame(batch_size, q_length, kv_length, q_off_hf - kv_offset, kv_offset, device,
                   use_vmap=bool(kwargs.get("use_vmap", False)))
    model = translate(mask_function, frame)
    q_off = q_off_hf - kv_offset
    dev = torch.device(device)
    # a block of up to MAX_Q queries after a cache (fewer queries than keys) that may attend to
    # every key (or to every key after a row's left padding) is left without a mask: attention
    # then needs no map (``kernels/unmasked_decode.py``). Other calls (prefill, training) get
    # their map compiled here, so that the layers trace under torch.compile without graph breaks
    # So is a causal block of several tokens whose last token sees every key (``causal_rows``).
    short = user is None and q_length <= MAX_Q and kv_length > q_length and dev.type != "meta"
    every = short and sees_every_key(model, q_length, kv_length, q_off)
    rows = short and not every and causal_end(model, q_length, kv_length, q_off) == kv_length
    padded = False
    if attention_mask is not None:
        pad, starts = _padding(attention_mask, frame, left_starts=every or rows)
        if starts is not None:
            return ModelMask(_and(model, pad), q_off, q_length, kv_length, batch_size, dev, unmasked=every,
                             kv_start=starts, causal_rows=rows)
        padded = pad is not _FULL
        model = _and(model, pad)
    if every and not padded:
        return ModelMask(_FULL, q_off, q_length, kv_length, batch_size, dev, unmasked=True)
    if rows and not padded:
        return ModelMask(model, q_off, q_length, kv_length, batch_size, dev, causal_rows=True)
    if user is not None:
        inner = user.mask if isinstance(user, Override) else user
        if inner.device is not None and inner.device != frame.device:
            inner = inner.to(frame.device)
        total = q_off_hf + q_length  # the sequence so far: positions 0 .. total - 1
        if kv_offset or total != kv_length:
            inner = _Reframed(inner, kv_offset, total)
        model = inner if isinstance(user, Override) else _combine(inner, model)
    # compiled here, once per call and layer type (cached on the mask object when it is reused);
    # this function is already outside torch.compile's tracing
    bm = None if dev.type == "meta" else mask_block_map(model, q_length, kv_length, q_off, dev)
    return ModelMask(model, q_off, q_length, kv_length, batch_size, dev, bm)


_warned_weights = False


def _dense_from_tensor(m: torch.Tensor, lk: int) -> Mask:
    """A 4-D mask tensor that transformers passed through unchanged (a custom 4-D mask)."""
    if m.dim() != 4:
        raise ValueError(f"maskattn attention: a tensor attention_mask must be 4-D (B, 1|H, Lq, Lk), got shape {tuple(m.shape)}")
    m = m[..., :lk]
    if m.dtype == torch.bool:
        return maskattn.dense(m)
    if not m.is_floating_point():
        return maskattn.dense(m != 0)
    allowed = m > torch.finfo(m.dtype).min / 2
    if bool((allowed & (m != 0)).any()):
        raise NotImplementedError("maskattn attention: additive float masks with values other than 0 and -inf "
                                  "(attention biases) are not supported")
    return maskattn.dense(allowed)


def attention_function(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       attention_mask, dropout: float = 0.0, scaling: float | None = None,
                       softcap: float | None = None, is_causal: bool | None = None, **kwargs):
    """The "maskattn" entry of ``transformers.AttentionInterface``.

    query (B, Hq, Lq, D), key/value (B, Hkv, Lk, D) with Hq % Hkv == 0 (no repeat_kv);
    ``attention_mask``: a ``ModelMask`` (from ``mask_function``), a maskattn ``Mask`` /
    ``override(Mask)`` / ``BlockMap`` (used as is, default q_offset), a 4-D bool or 0/-inf tensor,
    or None (causal if ``is_causal`` / ``module.is_causal``, else no mask). ``scaling``: softmax
    scale (default 1/sqrt(D)); ``softcap``: logit soft-capping. ``sliding_window`` and other
    keyword arguments are ignored: the window is part of the mask.
    Returns ``(out (B, Lq, Hq, D) contiguous, None)``.
    """
    global _warned_weights
    if dropout and dropout > 0 and getattr(module, "training", False):
        raise ValueError(f"attn_implementation='maskattn' does not support attention dropout (got dropout={dropout} "
                         "with the module in training mode). Set the config's attention dropout to 0.0, or train "
                         "with another attn_implementation.")
    for name in ("s_aux", "sinks", "position_bias"):
        if kwargs.get(name) is not None:
            raise NotImplementedError(f"attn_implementation='maskattn' does not support `{name}`")
    cache = kwargs.get("cache")
    if cache is not None and "Paged" in type(cache).__name__:
        raise NotImplementedError("attn_implementation='maskattn' does not support paged attention / continuous batching")
    if kwargs.get("output_attentions") and not _warned_weights:
        warnings.warn("attn_implementation='maskattn' does not return attention weights (output_attentions=True); "
                      "use attn_implementation='eager' for them", stacklevel=2)
        _warned_weights = True
    if key.shape[-1] != value.shape[-1]:
        raise NotImplementedError(f"attn_implementation='maskattn' needs the same head dim for keys and values, "
                                  f"got {key.shape[-1]} and {value.shape[-1]}")

    lq, lk = query.shape[2], key.shape[2]
    q_offset = None
    if isinstance(attention_mask, ModelMask):
        if (attention_mask.q_len, attention_mask.kv_len) != (lq, lk):
            raise ValueError(f"maskattn attention: the mask was built for q_len={attention_mask.q_len}, "
                             f"kv_len={attention_mask.kv_len}, but the layer has q_len={lq}, kv_len={lk}")
        if attention_mask.block_map is not None:
            mask = attention_mask.block_map
        elif attention_mask.kv_start is not None or attention_mask.kv_end is not None or attention_mask.causal_rows:
            # every key after left padding, or (a static cache's step) before the last token's
            # position + 1, or causal rows: no map where it applies
            out = attention_between(query, key, value, kv_start=attention_mask.kv_start, kv_end=attention_mask.kv_end,
                                    causal=attention_mask.causal_rows, scale=scaling, softcap=softcap)
            if out is not None:
                return out.transpose(1, 2).contiguous(), None
            mask, q_offset = attention_mask.mask, attention_mask.q_offset
        elif attention_mask.unmasked:
            mask = None
        else:
            mask, q_offset = attention_mask.mask, attention_mask.q_offset
    elif isinstance(attention_mask, Override):
        mask = attention_mask.mask
    elif isinstance(attention_mask, (Mask, BlockMap)):
        mask = attention_mask
    elif isinstance(attention_mask, torch.Tensor):
        mask = _dense_from_tensor(attention_mask, lk)
    elif attention_mask is None:
        causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        mask = _band(None, 0) if causal and lq > 1 else None
    else:
        raise TypeError(f"maskattn attention: unsupported attention_mask of type {type(attention_mask).__name__}")

    out = maskattn.attention(query, key, value, mask, scale=scaling, q_offset=q_offset, softcap=softcap)
    return out.transpose(1, 2).contiguous(), None


# ---------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------
def _mask_shape(self):
    return (self.batch_size, self.num_heads, -1, -1)


def _install_mask_shims() -> None:
    """transformers' mask preprocessing reads ``attention_mask.ndim`` (and ``.shape[-1]`` without a
    cache) before it reaches the mask function: give ``Mask`` both, unless it already has them."""
    if not hasattr(Mask, "ndim"):
        Mask.ndim = 4
    if not hasattr(Mask, "shape"):
        Mask.shape = property(_mask_shape)


def register(name: str = NAME) -> str:
    """Register the attention function and the mask function under ``name`` (default
    "maskattn"); idempotent. Returns the name to pass as ``attn_implementation``."""
    if "flash" in name:
        raise ValueError("the name must not contain 'flash' (transformers treats those names as FlashAttention)")
    AttentionInterface.register(name, attention_function)
    AttentionMaskInterface.register(name, mask_function)
    _install_mask_shims()
    return name


register()

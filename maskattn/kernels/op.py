"""The attention as two PyTorch custom ops, the one autograd layer over the kernels.

* ``maskattn::attention_forward(q, k, v, map_tensors, map_ints, map_spec, scale, softcap,
  deterministic) -> (out, lse)``
* ``maskattn::attention_backward(dout, q, k, v, out, lse, dlse, map_tensors, map_ints, map_spec,
  scale, softcap, deterministic) -> (dq, dk, dv)``

The BlockMap travels as plain op arguments (``flatten_block_map``): its tensor fields as a
tensor list, its int fields as an int list and everything else (field kinds, strings) in one
string, so torch.compile traces the call without a graph break, fake tensors get shapes from
the fake implementations (also used for ``device="meta"``), and CUDA graphs can capture it.
Each op runs the Triton kernels (CUDA, or CPU under ``TRITON_INTERPRET=1``) or the block-sparse
PyTorch path (other CPU tensors). ``deterministic`` is read by the backward only.

Autocast: the ops are opaque to it and run in their inputs' dtype (no autocast rule).
Double backward is not supported: differentiating the gradients raises (the backward is
once-differentiable). ``torch.func.vmap`` works through a batching rule (``_vmap_*``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Optional

import torch

from ..block_map import BlockMap
from . import decode, unmasked_decode
from .backward import attention_backward
from .config import interpreting
from .forward import attention_forward
from .torch_blocksparse import blocksparse_attention, blocksparse_attention_backward

_FIELDS = tuple(f.name for f in dataclasses.fields(BlockMap))
_DOUBLE_BACKWARD = ("maskattn.attention: double backward is not supported (its gradients were computed with "
                    "create_graph=True and are being differentiated again)")


# ---- BlockMap <-> op arguments ---------------------------------------------------------------
def flatten_block_map(bm: BlockMap) -> tuple[list[torch.Tensor], list[int], str]:
    """BlockMap -> (tensor fields, int fields, spec). Generic over ``dataclasses.fields``: a
    field holding a tensor (in this map) goes to the tensor list, an int to the int list,
    anything else (display-only fields: the mask's repr) stays out of the op (the op's map gets
    the field's default); ``spec`` records which list each field went to, so the same field may
    be an int in one map and a tensor in another. Fields in ``_KEPT_OUT`` (``q_offset``) stay
    out too."""
    tensors, ints, spec = [], [], []
    for name in _FIELDS:
        value = getattr(bm, name)
        if name in _KEPT_OUT:
            spec.append(name + ":v")
        elif isinstance(value, torch.Tensor):
            tensors.append(value)
            spec.append(name + ":t")
        elif isinstance(value, int) and not isinstance(value, bool):
            ints.append(value)
            spec.append(name + ":i")
        else:
            spec.append(name + ":v")
    # only [a-z_:,]: inductor embeds string arguments in generated code (torch 2.11's CUDA wrapper
    # broke on the quotes, parentheses and newlines of a mask repr passed here)
    return tensors, ints, ",".join(spec)


# fields the kernels never read, kept out of the op with the value its map gets: ``q_offset``
# changes at every decode step, and as an op argument it would make a compiled model specialise
# (or, with CUDA graphs, re-record) on each position
_KEPT_OUT = {"q_offset": 0}


@functools.lru_cache(maxsize=64)
def _parse_spec(spec: str) -> tuple[tuple[str, str], ...]:
    """spec -> ((field name, 't' | 'i' | 'v'), ...) in field order."""
    return tuple(tuple(item.split(":")) for item in spec.split(","))


def unflatten_block_map(tensors: list[torch.Tensor], ints: list[int], spec: str) -> BlockMap:
    """Inverse of ``flatten_block_map``."""
    it_t, it_i, fields = iter(tensors), iter(ints), {}
    for name, kind in _parse_spec(spec):
        if kind != "v":  # display-only fields keep their defaults
            fields[name] = next(it_t) if kind == "t" else next(it_i)
        elif name in _KEPT_OUT:
            fields[name] = _KEPT_OUT[name]
    return BlockMap(**fields)


# ---- implementations -------------------------------------------------------------------------
def _use_triton(q: torch.Tensor) -> bool:
    return q.is_cuda or interpreting()


def _unit_stride(t: torch.Tensor) -> torch.Tensor:
    # the kernels take any strides except a strided last dim (no vector loads): copy only then
    return t if t.stride(-1) == 1 else t.contiguous()


def _interpreter_dtype(t: torch.Tensor) -> torch.Tensor:
    # the interpreter's bf16 tl.dot is wrong: bf16 runs in fp32 there (results are cast back);
    # the environment is read last: it costs microseconds, and a decode step is host-bound
    return t.float() if t.dtype == torch.bfloat16 and not t.is_cuda and interpreting() else t


def _no_autocast(device_type: str):
    # entering autocast(enabled=False) costs a few microseconds of host time: only when it is on
    return torch.autocast(device_type, enabled=False) if torch.is_autocast_enabled(device_type) else _NULL_CONTEXT


_NULL_CONTEXT = contextlib.nullcontext()


def _forward(q, k, v, bm: BlockMap, scale: float, softcap):
    """The forward computation behind both entry points (custom op and eager Function)."""
    q, k, v = _unit_stride(q), _unit_stride(k), _unit_stride(v)
    with _no_autocast(q.device.type):
        if q.is_cuda:
            out, lse = attention_forward(q, k, v, bm, scale, softcap)
        elif interpreting():
            out, lse = attention_forward(_interpreter_dtype(q), _interpreter_dtype(k), _interpreter_dtype(v), bm,
                                         scale, softcap)
        else:
            out, lse = blocksparse_attention(q, k, v, bm, scale, softcap)
    return out.to(q.dtype).contiguous(), lse.contiguous()


def _gradients(dout, q, k, v, out, lse, dlse, bm: BlockMap, scale: float, softcap, deterministic: bool):
    """The backward computation behind both entry points: (dq, dk, dv) like q, k, v."""
    dout, q, k, v, out = (_unit_stride(t) for t in (dout, q, k, v, out))
    with _no_autocast(q.device.type):
        if _use_triton(q):
            args = [_interpreter_dtype(t) for t in (dout, q, k, v, out)]
            grads = attention_backward(*args, lse, dlse, bm, scale, softcap, deterministic)
        else:
            grads = blocksparse_attention_backward(dout, q, k, v, out, lse, dlse, bm, scale, softcap)
    return tuple(g.to(t.dtype).contiguous() for g, t in zip(grads, (q, k, v)))


@torch.library.custom_op("maskattn::attention_forward", mutates_args=())
def attention_forward_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, map_tensors: list[torch.Tensor],
                         map_ints: list[int], map_spec: str, scale: float, softcap: Optional[float],
                         deterministic: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """q: (B, Hq, Lq, D), k/v: (B, Hkv, Lk, D) -> out (B, Hq, Lq, D) in q's dtype, lse (B, Hq, Lq) fp32."""
    return _forward(q, k, v, unflatten_block_map(map_tensors, map_ints, map_spec), scale, softcap)


@attention_forward_op.register_fake
def _(q, k, v, map_tensors, map_ints, map_spec, scale, softcap, deterministic):
    b, hq, lq, d = q.shape
    return q.new_empty((b, hq, lq, d)), q.new_empty((b, hq, lq), dtype=torch.float32)


@torch.library.custom_op("maskattn::attention_backward", mutates_args=())
def attention_backward_op(dout: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                          out: torch.Tensor, lse: torch.Tensor, dlse: Optional[torch.Tensor],
                          map_tensors: list[torch.Tensor], map_ints: list[int], map_spec: str, scale: float,
                          softcap: Optional[float], deterministic: bool
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients (dq, dk, dv), shaped and typed like q, k, v (contiguous)."""
    bm = unflatten_block_map(map_tensors, map_ints, map_spec)
    return _gradients(dout, q, k, v, out, lse, dlse, bm, scale, softcap, deterministic)


@attention_backward_op.register_fake
def _(dout, q, k, v, out, lse, dlse, map_tensors, map_ints, map_spec, scale, softcap, deterministic):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


# ---- autograd ----------------------------------------------------------------------------------
def _setup_context(ctx, inputs, output):
    q, k, v, map_tensors, map_ints, map_spec, scale, softcap, deterministic = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse, *map_tensors)
    ctx.map_ints, ctx.map_spec = map_ints, map_spec
    ctx.scale, ctx.softcap, ctx.deterministic = scale, softcap, deterministic
    ctx.set_materialize_grads(False)  # a None gradient (e.g. lse unused) skips its work


def _backward(ctx, dout, dlse):
    q, k, v, out, lse, *map_tensors = ctx.saved_tensors
    if dout is None:
        dout = torch.zeros_like(out)
    args = (dout, q, k, v, out, lse, dlse, map_tensors, ctx.map_ints, ctx.map_spec, ctx.scale, ctx.softcap,
            ctx.deterministic)
    dq, dk, dv = _once_differentiable(lambda: attention_backward_op(*args), (dout, dlse, q, k, v))
    return dq, dk, dv, [None] * len(map_tensors), None, None, None, None, None


def _once_differentiable(compute, inputs):
    """Run ``compute`` (-> gradients); under create_graph=True the gradients get a node that
    raises if they are differentiated again (double backward is not supported)."""
    if not (torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs)):
        return compute()
    with torch.no_grad():
        grads = compute()
    return torch._C._functions.DelayedError(_DOUBLE_BACKWARD.encode(), 3)(*(g.detach().requires_grad_() for g in grads))


attention_forward_op.register_autograd(_backward, setup_context=_setup_context)


# ---- vmap ---------------------------------------------------------------------------------------
def _batched_first(x, dim, size):
    """Move the vmapped dim to the front; an unbatched tensor is expanded to ``size``."""
    if x is None:
        return None
    return x.movedim(dim, 0) if dim is not None else x.expand(size, *x.shape)


def _vmap_call(op, info, in_dims, args, n_tensor_args: int, batch_at: int, map_batch: int):
    """Run ``op`` for every vmapped sample: one call with the vmapped dim folded into the batch
    dim when the map is shared by the batch rows, else one call per sample. The first
    ``n_tensor_args`` args are the (B, ...) tensors; the map's tensor list follows them."""
    map_dims = in_dims[n_tensor_args]
    if map_dims is not None and any(d is not None for d in map_dims):
        raise ValueError("maskattn.attention under vmap: the BlockMap's tensors cannot be vmapped; vmap over q, k, v")
    n = info.batch_size
    xs = [_batched_first(a, d, n) for a, d in zip(args[:n_tensor_args], in_dims[:n_tensor_args])]
    rest = args[n_tensor_args:]
    if map_batch == 1:  # (n, B, ...) -> (n * B, ...), one call
        b = xs[batch_at].shape[1]
        res = op(*(None if x is None else x.flatten(0, 1) for x in xs), *rest)
        return tuple(r.unflatten(0, (n, b)) for r in res), (0,) * len(res)
    res = [op(*(None if x is None else x[i] for x in xs), *rest) for i in range(n)]
    return tuple(torch.stack(parts) for parts in zip(*res)), (0,) * len(res[0])


def _map_batch(map_ints, map_spec) -> int:
    names = [name for name, kind in _parse_spec(map_spec) if kind == "i"]
    return map_ints[names.index("batch")]


def _vmap_forward(info, in_dims, q, k, v, map_tensors, map_ints, map_spec, scale, softcap, deterministic):
    args = (q, k, v, map_tensors, map_ints, map_spec, scale, softcap, deterministic)
    return _vmap_call(attention_forward_op, info, in_dims, args, 3, 0, _map_batch(map_ints, map_spec))


def _vmap_backward(info, in_dims, dout, q, k, v, out, lse, dlse, map_tensors, map_ints, map_spec, scale, softcap,
                   deterministic):
    args = (dout, q, k, v, out, lse, dlse, map_tensors, map_ints, map_spec, scale, softcap, deterministic)
    return _vmap_call(attention_backward_op, info, in_dims, args, 7, 1, _map_batch(map_ints, map_spec))


attention_forward_op.register_vmap(_vmap_forward)
attention_backward_op.register_vmap(_vmap_backward)


# ---- eager calls --------------------------------------------------------------------------------
class _EagerAttention(torch.autograd.Function):
    """Plain eager calls: the same computation as the op, without the custom-op machinery,
    which costs ~0.3 ms of host time per call (measured), as much as a sparse 8k kernel.
    torch.compile, fake / meta tensors and vmap go through the op."""

    @staticmethod
    def forward(ctx, q, k, v, bm: BlockMap, scale: float, softcap, deterministic: bool):
        out, lse = _forward(q, k, v, bm, scale, softcap)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.bm, ctx.scale, ctx.softcap, ctx.deterministic = bm, scale, softcap, deterministic
        ctx.set_materialize_grads(False)
        return out, lse

    @staticmethod
    def backward(ctx, dout, dlse):
        q, k, v, out, lse = ctx.saved_tensors
        if dout is None:
            dout = torch.zeros_like(out)
        dq, dk, dv = _once_differentiable(
            lambda: _gradients(dout, q, k, v, out, lse, dlse, ctx.bm, ctx.scale, ctx.softcap, ctx.deterministic),
            (dout, dlse, q, k, v))
        return dq, dk, dv, None, None, None, None


_is_wrapped = torch._C._functorch.is_functorch_wrapped_tensor


def _traced(q, k, v) -> bool:
    """Inside torch.compile, or on fake / meta / functorch-wrapped tensors: the op's path.
    (Plain tensors and parameters, the eager case, are told apart by their type first.)"""
    if torch.compiler.is_compiling():
        return True
    for t in (q, k, v):
        if t.is_meta or _is_wrapped(t) or (type(t) is not torch.Tensor and isinstance(t, _fake_tensor_type())):
            return True
    return False


def _grad_may_flow(q, k, v) -> bool:
    """Would autograd record this call (grad mode on and an input that requires grad)?"""
    return torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)


@functools.lru_cache(maxsize=1)
def _fake_tensor_type():
    from torch._subclasses.fake_tensor import FakeTensor
    return FakeTensor


# ---- entry points ---------------------------------------------------------------------------------
def _replayable_call(q, k, v, scale, softcap, deterministic) -> bool:
    """Can this call replay a recorded decode plan without ``attention()``'s checks: plain 4-D
    tensors on one device, float (or None) scale and softcap, a valid ``deterministic``, no autograd, no
    tracing or functorch transform? (A plan was recorded by a call that passed the checks with
    tensors laid out alike, so they hold here too.)"""
    return not (type(q) is not torch.Tensor or type(k) is not torch.Tensor or type(v) is not torch.Tensor
                or q.dim() != 4 or k.dim() != 4 or v.dim() != 4 or not (q.device == k.device == v.device)
                or (scale is not None and type(scale) is not float) or (softcap is not None and type(softcap) is not float)
                or not (deterministic is None or deterministic is True or deterministic is False)
                or _grad_may_flow(q, k, v) or _traced(q, k, v))


def replay_unmasked(q, k, v, mask, scale, softcap, deterministic, return_lse: bool):
    """``attention(q, k, v, mask, ...)`` (default offset) with a mask that lets every query see
    every key (None, or ``unmasked_decode.sees_every_key``), or causal rows ending at the last key
    (``unmasked_decode.causal_end``), as a replay of a plan of
    ``unmasked_decode`` (recorded by an earlier call with tensors laid out alike, any key count),
    or None where the call must take the full path. q: (B, Hq, Lq, D), k/v: (B, Hkv, Lk, D). A
    decode step pays the checks on every layer, so they are skipped here as in ``replay_decode``."""
    if not unmasked_decode.recorded_any() or not _replayable_call(q, k, v, scale, softcap, deterministic):
        return None
    causal = False
    if mask is not None:
        lq, lk = q.shape[2], k.shape[2]
        if not unmasked_decode.sees_every_key(mask, lq, lk, lk - lq):
            # causal rows at the default offset end at lk (``api.attention`` sends other ends there)
            if unmasked_decode.causal_end(mask, lq, lk, lk - lq) != lk:
                return None
            causal = lq > 1  # as ``api.attention`` records it
    done = unmasked_decode.replay_recorded(q, k, v, scale, softcap, fresh_lse=return_lse, causal_rows=causal)
    if done is None:
        return None
    return done if return_lse else done[0]


def unmasked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, softcap: float | None,
                       kv_start: torch.Tensor | None = None, kv_end: torch.Tensor | None = None,
                       causal: bool = False, keys: int | None = None):
    """(out (B, Hq, Lq, D), lse (B, Hq, Lq) fp32) of a call whose mask lets every query see every
    key (checked arguments: no mask, or ``unmasked_decode.sees_every_key``), or with ``kv_start``
    ((B,) int32 on q's device) every key from its batch row's ``kv_start[b]`` on, and with ``kv_end``
    ((B,) int32) every key before ``kv_end[b]``; with ``causal``, query row r of Lq stops Lq - 1 - r
    keys before that end (before Lk without ``kv_end``); with ``keys``, K / V are cut to their first
    ``keys`` keys first (the rest never read). On ``unmasked_decode``'s path, without a
    map, or None where that path does not apply: a gradient may flow, meta or functorch-wrapped
    tensors, CPU without the interpreter, or not a short query block. Inside torch.compile the call
    is one custom op (``unmasked_forward_op``), so a compiled decode step has no graph break here
    (a map would be compiled on the host)."""
    if _grad_may_flow(q, k, v) or not unmasked_decode.applies(q, k):
        return None
    if keys is not None and keys != k.shape[2]:
        k, v = k[:, :, :keys], v[:, :, :keys]
    if torch.compiler.is_compiling():
        return unmasked_forward_op(q, k, v, kv_start, kv_end, scale, softcap, causal)
    if _traced(q, k, v) or not _use_triton(q):
        return None
    return _unmasked_forward(q, k, v, scale, softcap, kv_start, kv_end, causal)


def _unmasked_forward(q, k, v, scale: float, softcap, kv_start, kv_end, causal: bool):
    dtype = q.dtype
    q, k, v = _unit_stride(q), _unit_stride(k), _unit_stride(v)
    with _no_autocast(q.device.type):
        out, lse = unmasked_decode.forward(_interpreter_dtype(q), _interpreter_dtype(k), _interpreter_dtype(v),
                                           scale, softcap, kv_start=kv_start, kv_end=kv_end, causal_rows=causal)
    return out.to(dtype), lse


@torch.library.custom_op("maskattn::unmasked_forward", mutates_args=())
def unmasked_forward_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_start: Optional[torch.Tensor],
                        kv_end: Optional[torch.Tensor], scale: float, softcap: Optional[float],
                        causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """q: (B, Hq, Lq, D), k/v: (B, Hkv, Lk, D), kv_start / kv_end: (B,) int32 or None -> out
    (B, Hq, Lq, D) in q's dtype, lse (B, Hq, Lq) fp32: every query attends to every key of
    [kv_start[b], kv_end[b]) (or of [0, Lk) where not given); with ``causal`` query row r to those
    before the end minus Lq - 1 - r.
    Forward only (no autograd formula: ``unmasked_attention`` sends it no call that needs one)."""
    if _use_triton(q):
        return _unmasked_forward(q, k, v, scale, softcap, kv_start, kv_end, causal)
    from ..compiler import compile_mask  # the plain-CPU path: the same attention through a map
    from ..masks.band import causal as causal_mask
    from ..masks.full import full
    from ..masks.padding import padding
    lq, lk = q.shape[2], k.shape[2]
    keys = torch.arange(lk, device=q.device)[None, :]
    start = keys >= (0 if kv_start is None else kv_start[:, None])
    if causal:  # causal at the offset that puts the last row at the end: it also cuts the keys after it
        mask = causal_mask() if kv_start is None else causal_mask() & padding(start)
        q_offset = lk - lq if kv_end is None else kv_end.to(torch.int64) - lq
    else:
        mask = full() if kv_start is None and kv_end is None else padding(
            start & (keys < (lk if kv_end is None else kv_end[:, None])))
        q_offset = None
    return _forward(q, k, v, compile_mask(mask, lq, lk, q_offset=q_offset, device=q.device), scale, softcap)


@unmasked_forward_op.register_fake
def _(q, k, v, kv_start, kv_end, scale, softcap, causal=False):
    b, hq, lq, d = q.shape
    return q.new_empty((b, hq, lq, d)), q.new_empty((b, hq, lq), dtype=torch.float32)


def replay_decode(bm: BlockMap, q, k, v, scale, softcap, deterministic, return_lse: bool):
    """``attention(q, k, v, bm, scale=..., softcap=..., deterministic=..., return_lse=...)`` as a
    replay of a decode plan recorded on ``bm`` (``decode.recorded_plan``), or None where the call
    must take the full path: no such plan, arguments that path would reject or convert (other
    than 4-D tensors on one device, checked first: the plan key holds layouts, not devices), autograd,
    tracing, functorch transforms. q: (B, Hq, Lq, D), k/v: (B, Hkv, Lk, D). A plan is recorded
    only by a call that passed every check with tensors of the same shapes, strides, dtypes and
    devices (its key), so those checks hold here too; this skips them because every layer of a
    decode step pays them (host-bound)."""
    if "_decode_plans" not in bm.__dict__ or not _replayable_call(q, k, v, scale, softcap, deterministic):
        return None
    plan = decode.recorded_plan(bm, q, k, v, scale, softcap)
    if plan is None:
        return None
    out, lse = plan(q, k, v, fresh_lse=return_lse)
    return (out, lse) if return_lse else out


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bm: BlockMap, scale: float,
                     softcap: float | None, deterministic: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(out (B, Hq, Lq, D), lse (B, Hq, Lq) fp32); differentiable in q, k, v. Eager calls take
    ``_EagerAttention`` (or, when no gradient can flow, the forward itself); traced ones the
    custom op (same computation)."""
    if not _traced(q, k, v):
        if _grad_may_flow(q, k, v):
            return _EagerAttention.apply(q, k, v, bm, scale, softcap, deterministic)
        return _forward(q, k, v, bm, scale, softcap)  # inference: no autograd node to build
    tensors, ints, spec = flatten_block_map(bm)
    return attention_forward_op(q, k, v, tensors, ints, spec, scale, softcap, deterministic)

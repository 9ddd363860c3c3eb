"""The one ``autograd.Function`` over the Triton forward and backward kernels."""
from __future__ import annotations

import torch

from ..block_map import BlockMap
from .backward import attention_backward
from .config import interpreting
from .forward import attention_forward


class MaskedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bm: BlockMap, scale: float, softcap, deterministic: bool):
        out, lse = attention_forward(q, k, v, bm, scale, softcap)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.bm, ctx.scale, ctx.softcap, ctx.deterministic = bm, scale, softcap, deterministic
        ctx.set_materialize_grads(False)
        ctx.mark_non_differentiable()
        return out, lse

    @staticmethod
    def backward(ctx, dout, dlse):
        q, k, v, out, lse = ctx.saved_tensors
        if dout is None:
            dout = torch.zeros_like(out)
        dq, dk, dv = attention_backward(dout, q, k, v, out, lse, dlse, ctx.bm, ctx.scale, ctx.softcap,
                                        ctx.deterministic)
        return dq, dk, dv, None, None, None, None


def triton_attention(q, k, v, bm: BlockMap, scale: float, softcap, deterministic: bool | None = None):
    """(out, lse) through the Triton kernels. Under the CPU interpreter, bf16 runs in fp32
    because the interpreter's bf16 ``tl.dot`` is wrong; the result is cast back. ``deterministic``
    None follows ``torch.are_deterministic_algorithms_enabled()``."""
    if deterministic is None:
        deterministic = torch.are_deterministic_algorithms_enabled()
    if interpreting() and q.dtype == torch.bfloat16:
        out, lse = MaskedAttention.apply(q.float(), k.float(), v.float(), bm, scale, softcap, deterministic)
        return out.to(q.dtype), lse
    return MaskedAttention.apply(q, k, v, bm, scale, softcap, deterministic)

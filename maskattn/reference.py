"""Dense reference attention: the oracle of every kernel test. O(Lq * Lk) on purpose."""
from __future__ import annotations

import math

import torch

from .masks.base import Mask


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Mask | None = None, *,
              scale: float | None = None, q_offset: int | None = None, softcap: float | None = None,
              compute_dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense masked attention.

    q: (B, Hq, Lq, D); k, v: (B, Hkv, Lk, D) with Hq % Hkv == 0. Returns
    ``out: (B, Hq, Lq, D)`` and ``lse: (B, Hq, Lq)`` (natural log), both in ``compute_dtype``
    (float64 by default; fp32 also works). Fully-masked rows give out 0 and lse -inf.
    Differentiable (used as the gradient oracle)."""
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    allowed = _materialized(mask, lq, lk, q_offset, q.device)
    qc, kc, vc = (t.to(compute_dtype) for t in (q, k, v))
    kc = kc.repeat_interleave(hq // hkv, dim=1)
    vc = vc.repeat_interleave(hq // hkv, dim=1)
    s = (qc @ kc.transpose(-1, -2)) * scale
    if softcap is not None:
        s = softcap * torch.tanh(s / softcap)
    return masked_softmax_av(s, allowed, vc)


def attention_low_precision(q, k, v, mask: Mask | None = None, *, scale=None, q_offset=None, softcap=None):
    """The same dense attention with matmuls in the input dtype and an fp32 softmax: the
    'baseline error' run of the error-ratio rule (CONVENTIONS.md). Returns (out, lse)."""
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    allowed = _materialized(mask, lq, lk, q_offset, q.device)
    kr = k.repeat_interleave(hq // hkv, dim=1)
    vr = v.repeat_interleave(hq // hkv, dim=1)
    s = (q @ kr.transpose(-1, -2)).float() * scale
    if softcap is not None:
        s = softcap * torch.tanh(s / softcap)
    out, lse = masked_softmax_av(s, allowed, vr, p_dtype=q.dtype)
    return out.to(q.dtype), lse


def _materialized(mask, lq, lk, q_offset, device):
    if mask is None:
        return torch.ones(1, 1, lq, lk, dtype=torch.bool, device=device)
    return mask.materialize(lq, lk, q_offset=q_offset, device=device)


def masked_softmax_av(s, allowed, v, p_dtype=None):
    """softmax(s masked by ``allowed``) @ v with the fully-masked-row convention -> (out, lse).
    s: (..., M, N) float, allowed: broadcastable bool, v: (..., N, D)."""
    s = s.masked_fill(~allowed, float("-inf"))
    if s.shape[-1] == 0:  # no keys at all
        m = s.new_zeros(s.shape[:-1] + (1,))
    else:
        m = s.amax(-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m)).detach()
    p = torch.exp(s - m)
    l = p.sum(-1, keepdim=True)
    l_safe = torch.where(l > 0, l, torch.ones_like(l))
    pv = p.to(p_dtype) @ v if p_dtype is not None else p @ v
    out = pv.to(l.dtype) / l_safe
    lse = torch.where(l > 0, m + torch.log(l_safe), torch.full_like(l, float("-inf"))).squeeze(-1)
    return out, lse

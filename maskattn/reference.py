"""Dense reference attention: the oracle of every kernel test. O(Lq * Lk) on purpose.

Non-finite keys and values (NaN / Inf in ``k`` or ``v``) reach only the rows that may attend
to them: masked-out positions never influence any output (``finite_kv``, ``masked_softmax_av``).
A row that does attend to a key whose ``k`` or ``v`` holds a non-finite entry returns NaN
(output and lse); its gradients are not meaningful."""
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
    kc, vc, bad = finite_kv(kc.repeat_interleave(hq // hkv, dim=1), vc.repeat_interleave(hq // hkv, dim=1))
    s = (qc @ kc.transpose(-1, -2)) * scale
    if softcap is not None:
        s = softcap * torch.tanh(s / softcap)
    return masked_softmax_av(s, allowed, vc, bad_keys=bad)


def attention_low_precision(q, k, v, mask: Mask | None = None, *, scale=None, q_offset=None, softcap=None):
    """The same dense attention with matmuls in the input dtype and an fp32 softmax: the
    'baseline error' run of the error-ratio rule (docs/semantics.md). Returns (out, lse)."""
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    allowed = _materialized(mask, lq, lk, q_offset, q.device)
    kr, vr, bad = finite_kv(k.repeat_interleave(hq // hkv, dim=1), v.repeat_interleave(hq // hkv, dim=1))
    s = (q @ kr.transpose(-1, -2)).float() * scale
    if softcap is not None:
        s = softcap * torch.tanh(s / softcap)
    out, lse = masked_softmax_av(s, allowed, vr, p_dtype=q.dtype, bad_keys=bad)
    return out.to(q.dtype), lse


def _materialized(mask, lq, lk, q_offset, device):
    if mask is None:
        return torch.ones(1, 1, lq, lk, dtype=torch.bool, device=device)
    return mask.materialize(lq, lk, q_offset=q_offset, device=device)


def finite_kv(k: torch.Tensor, v: torch.Tensor):
    """k, v: (..., N, D) -> (k, v with non-finite entries replaced by 0, bad: (..., N) bool, True
    for keys whose k or v holds a NaN / Inf). A matmul spreads a NaN to every row through
    ``0 * nan``, so the non-finite entries leave the products and come back, row by row, only
    where the mask allows them (``masked_softmax_av(bad_keys=...)``)."""
    bad = ~(torch.isfinite(k).all(-1) & torch.isfinite(v).all(-1))
    return k.nan_to_num(0.0, 0.0, 0.0), v.nan_to_num(0.0, 0.0, 0.0), bad


def masked_softmax_av(s, allowed, v, p_dtype=None, bad_keys=None):
    """softmax(s masked by ``allowed``) @ v with the fully-masked-row convention -> (out, lse).
    s: (..., M, N) float, allowed: broadcastable bool, v: (..., N, D). ``bad_keys``: (..., N) bool
    from ``finite_kv`` (v then holds no NaN / Inf): rows allowed to see a bad key return NaN."""
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
    if bad_keys is not None:
        poisoned = (allowed & bad_keys.unsqueeze(-2)).any(-1)  # (..., M)
        out = out.masked_fill(poisoned.unsqueeze(-1), float("nan"))
        lse = lse.masked_fill(poisoned, float("nan"))
    return out, lse

"""Error-ratio checks (docs/semantics.md, "Tolerances") shared by the kernel tests (CPU and GPU).

Kernel error to the float64 reference must be <= 2x (forward, lse) or 3x (gradients) the
error of a low-precision PyTorch run of the same dense attention, plus a rounding floor;
fp32 inputs use fixed tolerances (the kernels use IEEE fp32 dots, no TF32)."""
from __future__ import annotations

import torch

import maskattn as ma
from maskattn import reference

FP32_ATOL = 2e-5


def rand_qkv(b, hq, hkv, lq, lk, d, dtype, device="cpu", requires_grad=False, seed=0):
    g = torch.Generator(device=device).manual_seed(seed)
    q = torch.randn(b, hq, lq, d, generator=g, device=device).to(dtype)
    k = torch.randn(b, hkv, lk, d, generator=g, device=device).to(dtype)
    v = torch.randn(b, hkv, lk, d, generator=g, device=device).to(dtype)
    return tuple(t.requires_grad_(requires_grad) for t in (q, k, v))


def _floor(ref: torch.Tensor, dtype) -> float:
    # one unit of rounding of the output dtype at the reference's magnitude
    return torch.finfo(dtype).eps * max(1.0, float(ref.abs().max()))


def _check(name, got, ref, low, dtype, ratio):
    got, ref = got.double(), ref.double()
    assert not torch.isnan(got).any(), f"{name}: NaN in kernel output"
    finite = torch.isfinite(ref)
    assert torch.equal(torch.isfinite(got), finite), f"{name}: infinities differ from the reference"
    err = (got - ref)[finite].abs().max().item() if finite.any() else 0.0
    if dtype == torch.float32:
        bound = FP32_ATOL * max(1.0, float(ref[finite].abs().max()) if finite.any() else 1.0)
    else:
        base = (low.double() - ref)[finite].abs().max().item() if finite.any() else 0.0
        bound = ratio * base + _floor(ref[finite] if finite.any() else ref.new_zeros(1), dtype)
    assert err <= bound, f"{name}: max error {err:.3e} > bound {bound:.3e}"


check_close = _check  # (name, got, ref, low, dtype, ratio): the error-ratio rule on any selection


def check_forward(q, k, v, mask, *, out, lse, scale=None, q_offset=None, softcap=None):
    """out/lse of a kernel against the float64 reference with the error-ratio rule."""
    ref_o, ref_l = reference.attention(q, k, v, mask, scale=scale, q_offset=q_offset, softcap=softcap)
    low_o, low_l = reference.attention_low_precision(q, k, v, mask, scale=scale, q_offset=q_offset, softcap=softcap)
    assert out.dtype == q.dtype and out.shape == q.shape
    assert lse.dtype == torch.float32 and lse.shape == q.shape[:3]
    _check("out", out, ref_o, low_o, q.dtype, 2)
    _check("lse", lse, ref_l, low_l, q.dtype, 2)
    dead = torch.isinf(ref_l)  # fully masked rows: exactly 0 and -inf
    assert bool((out[dead] == 0).all()) and bool((lse[dead] == float("-inf")).all())


def reference_grads(q, k, v, mask, *, grad_out, scale=None, q_offset=None, softcap=None, grad_lse=None):
    """((dq, dk, dv) of the float64 reference, (dq, dk, dv) of the low-precision baseline)."""
    def run(fn, cast):
        qq, kk, vv = (cast(t).detach().requires_grad_(True) for t in (q, k, v))
        o, l = fn(qq, kk, vv, mask, scale=scale, q_offset=q_offset, softcap=softcap)
        loss = (o * cast(grad_out).to(o.dtype)).sum()
        if grad_lse is not None:
            loss = loss + (torch.where(torch.isfinite(l), l, 0) * grad_lse.to(l.dtype)).sum()
        return torch.autograd.grad(loss, (qq, kk, vv))

    return run(reference.attention, lambda t: t.double()), run(reference.attention_low_precision, lambda t: t)


def check_backward(q, k, v, mask, *, grads, grad_out, scale=None, q_offset=None, softcap=None, grad_lse=None):
    """(dq, dk, dv) of a kernel against autograd through the float64 reference (3x rule)."""
    ref, low = reference_grads(q, k, v, mask, grad_out=grad_out, scale=scale, q_offset=q_offset, softcap=softcap,
                               grad_lse=grad_lse)
    for name, got, r, lo, t in zip(("dq", "dk", "dv"), grads, ref, low, (q, k, v)):
        assert got.shape == t.shape and got.dtype == t.dtype, name
        _check(name, got, r, lo, q.dtype, 3)


def kernel_grads(q, k, v, mask, grad_out, grad_lse=None, **kw):
    """(out, lse, (dq, dk, dv)) through maskattn.attention."""
    qq, kk, vv = (t.detach().requires_grad_(True) for t in (q, k, v))
    out, lse = ma.attention(qq, kk, vv, mask, return_lse=True, **kw)
    loss = (out * grad_out).sum()
    if grad_lse is not None:
        loss = loss + (torch.where(torch.isfinite(lse), lse, 0) * grad_lse).sum()
    return out, lse, torch.autograd.grad(loss, (qq, kk, vv))


def check_family_gradients(mask_name, lq, lk, hq, hkv, d, deterministic, device):
    """Gradients of one standard family (causal, sliding, documents, longformer, or padded: causal
    with NaN / Inf keys and NaN values no query may see) at odd shapes, B=2, bf16, against the reference;
    every gradient finite. The GPU backward kernels' family tests share it."""
    valid = torch.ones(2, lk, dtype=torch.bool)
    valid[:, lk // 2: lk // 2 + 7] = False
    masks = dict(causal=ma.causal(), sliding=ma.sliding_window(300),
                 documents=ma.documents([lk // 3, lk // 2, lk - lk // 3 - lk // 2]),
                 longformer=ma.longformer(64, [0, 5, lk // 2]), padded=ma.causal() & ma.padding(valid))
    mask = masks[mask_name].to(device)
    q, k, v = rand_qkv(2, hq, hkv, lq, lk, d, torch.bfloat16, device)
    grad_out = torch.randn_like(q)
    if mask_name == "padded":  # NaN and Inf keys and values beside allowed ones in their key tile
        k, v = k.clone(), v.clone()
        k[:, :, lk // 2: lk // 2 + 7] = float("nan")
        k[:, 0, lk // 2 + 1], k[:, -1, lk // 2 + 5, 1:] = float("inf"), float("-inf")
        v[:, :, lk // 2: lk // 2 + 7] = float("nan")
    _, _, grads = kernel_grads(q, k, v, mask, grad_out, deterministic=deterministic)
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    if mask_name == "padded":
        k, v = torch.nan_to_num(k), torch.nan_to_num(v)
    check_backward(q, k, v, mask, grads=grads, grad_out=grad_out)


def count_calls(monkeypatch, module, name: str) -> list:
    """Wrap ``module.name`` (a kernel launcher) so that each call appends to the returned list."""
    calls = []
    run = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *args: calls.append(1) or run(*args))
    return calls


def case_inputs(case, d, device):
    """A hypothesis ``attention_cases`` case at head dim ``d``, bf16, on ``device`` -> q, k, v, grad_out,
    the mask (moved to ``device``) and its block map. The GPU backward kernels' random-mask tests share it."""
    q, k, v = rand_qkv(case["batch"], case["hq"], case["hkv"], case["lq"], case["lk"], d, torch.bfloat16, device,
                       seed=case["seed"])
    mask = case["mask"].to(device)
    bm = ma.compile_mask(mask, case["lq"], case["lk"], q_offset=case["q_offset"], device=device)
    return q, k, v, torch.randn_like(q), mask, bm


def check_hidden_key_tiles(mask_name, d, device):
    """Gradients of the one-pass backward (``deterministic=False``) at Lq=1100, Lk=1250 (not a multiple
    of 64), B=2, 4 query / 2 KV heads, bf16, against the reference, every one finite. Masks:
    sliding (window 200, causal), causal, documents ([300, 5, 500, 445]) or nan_keys (window 150,
    causal, keys 300-699 hidden: whole key tiles no query sees, which must get zero dK / dV, with
    NaN keys and values at 600-604). The Hopper backward tests of their grids share it."""
    lq, lk = 1100, 1250
    q, k, v = rand_qkv(2, 4, 2, lq, lk, d, torch.bfloat16, device, seed=5)
    keys = torch.ones(2, lk, dtype=torch.bool)
    keys[:, 300:700] = False
    masks = dict(sliding=ma.sliding_window(200) & ma.causal(), causal=ma.causal(),
                 documents=ma.documents([300, 5, 500, 445]),
                 nan_keys=ma.sliding_window(150) & ma.causal() & ma.padding(keys))
    mask = masks[mask_name].to(device)
    grad_out = torch.randn_like(q)
    kn, vn = k, v
    if mask_name == "nan_keys":
        kn, vn = k.clone(), v.clone()
        kn[:, :, 600:605] = float("nan")
        vn[:, :, 600:605] = float("nan")
    _, _, grads = kernel_grads(q, kn, vn, mask, grad_out, deterministic=False)
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    if mask_name == "nan_keys":
        assert bool((grads[1][:, :, 300:700] == 0).all()) and bool((grads[2][:, :, 300:700] == 0).all())
    check_backward(q, k, v, mask, grads=grads, grad_out=grad_out)

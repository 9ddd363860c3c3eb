"""reference.attention: float64 dense masked attention, the oracle of the kernel tests."""
import math

import pytest
import torch
import torch.nn.functional as F

import maskattn as ma
from maskattn import reference


def _qkv(b, hq, hkv, lq, lk, d, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, hq, lq, d, generator=g, dtype=torch.float64).to(dtype)
    k = torch.randn(b, hkv, lk, d, generator=g, dtype=torch.float64).to(dtype)
    v = torch.randn(b, hkv, lk, d, generator=g, dtype=torch.float64).to(dtype)
    return q, k, v


def _sdpa(q, k, v, allowed, scale=None):
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale)


def _lse(q, k, allowed, scale):
    rep = q.shape[1] // k.shape[1]
    s = (q @ k.repeat_interleave(rep, dim=1).transpose(-1, -2)) * scale
    return torch.logsumexp(s.masked_fill(~allowed, float("-inf")), -1)


MASKS = {
    "none": (None, 1),
    "causal": (ma.causal(), 1),
    "window": (ma.sliding_window(5, 2), 1),
    "documents": (ma.documents(torch.tensor([[10, 7, 6, 0], [3, 3, 3, 14]])), 2),
    "longformer": (ma.longformer(2, [0, 11]), 1),
    "tree": (ma.tree([-1, 0, 0, 1, 1, 2, 2], prefix=16), 1),
    "prefix_lm_padding": (ma.prefix_lm(torch.tensor([4, 9])) & ma.padding(torch.arange(23) < torch.tensor([[23], [15]])),
                          2),
}


@pytest.mark.parametrize("name", MASKS)
@pytest.mark.parametrize("lq,lk", [(23, 23), (9, 23)])
@pytest.mark.parametrize("hq,hkv", [(2, 2), (4, 2), (6, 2), (3, 1)])
def test_matches_sdpa(name, lq, lk, hq, hkv):
    mask, b = MASKS[name]
    q, k, v = _qkv(b, hq, hkv, lq, lk, 16, seed=lq + hq)
    out, lse = reference.attention(q, k, v, mask)
    assert out.dtype == torch.float64 and out.shape == (b, hq, lq, 16) and lse.shape == (b, hq, lq)
    allowed = (mask or ma.full()).materialize(lq, lk).expand(b, hq, lq, lk)
    live = allowed.any(-1)
    want = _sdpa(q, k, v, allowed)
    torch.testing.assert_close(out[live], want[live], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(lse[live], _lse(q, k, allowed, 1 / math.sqrt(16))[live], rtol=1e-10, atol=1e-10)
    assert bool((out[~live] == 0).all()) and bool((lse[~live] == float("-inf")).all())
    assert not bool(out.isnan().any()) and not bool(lse.isnan().any())


@pytest.mark.parametrize("q_offset", [0, 5, -3, 30])
def test_q_offset_matches_sdpa_on_the_shifted_mask(q_offset):
    q, k, v = _qkv(1, 2, 2, 8, 20, 8)
    out, lse = reference.attention(q, k, v, ma.causal(), q_offset=q_offset)
    allowed = ma.causal().materialize(8, 20, q_offset=q_offset)
    live = allowed.expand(1, 2, 8, 20).any(-1)
    torch.testing.assert_close(out[live], _sdpa(q, k, v, allowed)[live], rtol=1e-10, atol=1e-10)
    assert bool((out[~live] == 0).all()) and bool((lse[~live] == float("-inf")).all())


def test_explicit_scale():
    q, k, v = _qkv(1, 2, 2, 10, 12, 32)
    out, lse = reference.attention(q, k, v, ma.causal(), scale=0.3)
    allowed = ma.causal().materialize(10, 12)
    torch.testing.assert_close(out, _sdpa(q, k, v, allowed, scale=0.3), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(lse, _lse(q, k, allowed.expand(1, 2, 10, 12), 0.3), rtol=1e-10, atol=1e-10)


def test_gqa_uses_head_groups():
    # query head h reads key/value head h // (Hq // Hkv): changing kv head 1 changes only q heads 2, 3
    q, k, v = _qkv(1, 4, 2, 6, 6, 8)
    out, _ = reference.attention(q, k, v, ma.causal())
    k2, v2 = k.clone(), v.clone()
    k2[:, 1] += 1.0
    v2[:, 1] -= 2.0
    out2, _ = reference.attention(q, k2, v2, ma.causal())
    assert torch.equal(out[:, :2], out2[:, :2])
    assert not torch.allclose(out[:, 2:], out2[:, 2:])


@pytest.mark.parametrize("softcap", [1.0, 5.0, 30.0])
def test_softcap_matches_hand_written_formula(softcap):
    q, k, v = _qkv(2, 4, 2, 11, 17, 16, seed=3)
    q = q * 4  # large scores so the cap matters
    mask = ma.sliding_window(6, 1) | ma.prefix_lm(2)
    out, lse = reference.attention(q, k, v, mask, softcap=softcap, scale=0.2)
    allowed = mask.materialize(11, 17)
    kk, vv = k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1)
    s = softcap * torch.tanh((q @ kk.transpose(-1, -2)) * 0.2 / softcap)
    s = s.masked_fill(~allowed, float("-inf"))
    want_lse = torch.logsumexp(s, -1)
    want = torch.exp(s - want_lse[..., None]) @ vv
    torch.testing.assert_close(out, want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(lse, want_lse, rtol=1e-10, atol=1e-10)
    # the cap changes the result (the test would be vacuous otherwise)
    plain, _ = reference.attention(q, k, v, mask, scale=0.2)
    assert not torch.allclose(out, plain, atol=1e-3)


def _masked_rows_mask(lq, lk):
    m = torch.rand(2, lq, lk, generator=torch.Generator().manual_seed(1)) < 0.4
    m[0, 0] = False
    m[0, 3] = False
    m[1, lq - 1] = False
    return ma.dense(m), [(0, 0), (0, 3), (1, lq - 1)]


@pytest.mark.parametrize("softcap", [None, 10.0])
def test_fully_masked_rows_give_zero_and_minus_inf(softcap):
    mask, dead = _masked_rows_mask(7, 9)
    q, k, v = _qkv(2, 2, 1, 7, 9, 8)
    out, lse = reference.attention(q, k, v, mask, softcap=softcap)
    assert not bool(out.isnan().any()) and not bool(lse.isnan().any())
    for b, r in dead:
        assert bool((out[b, :, r] == 0).all())
        assert bool((lse[b, :, r] == float("-inf")).all())
    assert int(torch.isinf(lse).sum()) == len(dead) * 2  # the other rows are finite


def test_everything_masked():
    q, k, v = _qkv(1, 2, 2, 4, 6, 8)
    out, lse = reference.attention(q, k, v, ~ma.full())
    assert bool((out == 0).all()) and bool((lse == float("-inf")).all())


@pytest.mark.parametrize("softcap", [None, 10.0])
def test_gradient_of_fully_masked_rows_is_zero_and_finite(softcap):
    dense, dead = _masked_rows_mask(7, 9)
    mask = dense & ma.padding(torch.arange(9)[None] < 8)  # and key 8 is seen by nobody
    allowed = mask.materialize(7, 9)[:, 0]  # (B, Lq, Lk)
    assert all(not bool(allowed[b, r].any()) for b, r in dead)
    q, k, v = (t.requires_grad_() for t in _qkv(2, 2, 1, 7, 9, 8))
    out, lse = reference.attention(q, k, v, mask, softcap=softcap)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    finite = torch.isfinite(lse)
    (out * w).sum().add(lse[finite].sum()).backward()
    for g in (q.grad, k.grad, v.grad):
        assert g is not None and bool(torch.isfinite(g).all())
    dead_rows = ~allowed.any(-1)  # (B, Lq)
    assert bool((q.grad.transpose(1, 2)[dead_rows] == 0).all())
    assert bool(q.grad.transpose(1, 2)[~dead_rows].abs().sum(-1).gt(0).all())  # live rows do get gradient
    unseen = ~allowed.any(1)  # (B, Lk): keys that no query may see get no gradient either
    assert bool(unseen[:, 8].all())
    assert bool((k.grad[:, 0][unseen] == 0).all()) and bool((v.grad[:, 0][unseen] == 0).all())


def test_gradient_matches_sdpa_on_live_rows():
    mask = ma.documents([5, 6]) | ma.longformer(1, [0])
    q, k, v = _qkv(1, 2, 2, 11, 11, 8)
    q1, k1, v1 = (t.clone().requires_grad_() for t in (q, k, v))
    q2, k2, v2 = (t.clone().requires_grad_() for t in (q, k, v))
    w = torch.randn(1, 2, 11, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (reference.attention(q1, k1, v1, mask)[0] * w).sum().backward()
    (_sdpa(q2, k2, v2, mask.materialize(11, 11)) * w).sum().backward()
    for a, b in ((q1, q2), (k1, k2), (v1, v2)):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_low_precision_baseline_is_close_and_masks_rows(dtype):
    mask, dead = _masked_rows_mask(7, 9)
    q, k, v = _qkv(2, 2, 1, 7, 9, 16, dtype=dtype)
    out, lse = reference.attention_low_precision(q, k, v, mask)
    ref, ref_lse = reference.attention(q, k, v, mask)
    assert out.dtype == dtype and lse.dtype == torch.float32
    live = torch.isfinite(ref_lse)
    tol = {torch.bfloat16: 5e-2, torch.float16: 1e-2, torch.float32: 1e-5}[dtype]
    assert float((out.double() - ref).abs().max()) < tol
    assert float((lse.double()[live] - ref_lse[live]).abs().max()) < tol
    for b, r in dead:
        assert bool((out[b, :, r] == 0).all()) and bool((lse[b, :, r] == float("-inf")).all())

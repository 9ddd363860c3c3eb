"""Gradients against autograd through the float64 reference (3x error-ratio rule), on CPU
through the Triton interpreter and through the block-sparse PyTorch path."""
import pytest
import torch
from hypothesis import given, settings

import maskattn as ma
from attention_checks import check_backward, kernel_grads, rand_qkv
from maskattn.kernels import torch_blocksparse
from test_forward import DEVICE, attention_cases, needs_triton


def _case_tensors(case, device=DEVICE):
    q, k, v = rand_qkv(case["batch"], case["hq"], case["hkv"], case["lq"], case["lk"], case["d"], case["dtype"],
                       device, seed=case["seed"])
    g = torch.Generator(device=device).manual_seed(case["seed"] + 1)
    grad_out = torch.randn(q.shape, generator=g, device=device).to(q.dtype)
    return q, k, v, grad_out


@needs_triton
@settings(max_examples=25)
@given(attention_cases(max_len=120))
def test_triton_gradients_match_reference(case):
    q, k, v, grad_out = _case_tensors(case)
    mask = case["mask"].to(DEVICE)
    bq, bk = case["block"]
    bm = ma.compile_mask(mask, case["lq"], case["lk"], q_offset=case["q_offset"], block_q=bq, block_k=bk, device=DEVICE)
    # both backward paths: one pass with atomic dQ, and the deterministic two-kernel path
    _, _, grads = kernel_grads(q, k, v, bm, grad_out, softcap=case["softcap"], deterministic=case["seed"] % 2 == 0)
    check_backward(q, k, v, mask, grads=grads, grad_out=grad_out, q_offset=case["q_offset"], softcap=case["softcap"])


@settings(max_examples=25)
@given(attention_cases(max_len=200))
def test_blocksparse_torch_gradients_match_reference(case):
    q, k, v, grad_out = _case_tensors(case, "cpu")
    bq, bk = case["block"]
    bm = ma.compile_mask(case["mask"], case["lq"], case["lk"], q_offset=case["q_offset"], block_q=bq, block_k=bk)
    scale = case["d"] ** -0.5
    out, lse = torch_blocksparse.blocksparse_attention(q, k, v, bm, scale, case["softcap"])
    grads = torch_blocksparse.blocksparse_attention_backward(grad_out, q, k, v, out, lse, None, bm, scale,
                                                             case["softcap"])
    check_backward(q, k, v, case["mask"], grads=grads, grad_out=grad_out, q_offset=case["q_offset"],
                   softcap=case["softcap"])


@needs_triton
def test_gradient_through_lse():
    q, k, v = rand_qkv(1, 4, 2, 70, 90, 32, torch.float32, DEVICE)
    grad_out = torch.randn_like(q)
    grad_lse = torch.randn(q.shape[:3], device=DEVICE)
    mask = ma.prefix_lm(20) & ma.sliding_window(30)
    _, _, grads = kernel_grads(q, k, v, mask, grad_out, grad_lse=grad_lse)
    check_backward(q, k, v, mask, grads=grads, grad_out=grad_out, grad_lse=grad_lse)


@needs_triton
@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("d", [16, 80, 96, 192, 256])
def test_head_dims(d, deterministic):
    q, k, v = rand_qkv(1, 2, 1, 45, 45, d, torch.float16, DEVICE)
    grad_out = torch.randn_like(q)
    _, _, grads = kernel_grads(q, k, v, ma.causal(), grad_out, deterministic=deterministic)
    check_backward(q, k, v, ma.causal(), grads=grads, grad_out=grad_out)


@needs_triton
@pytest.mark.parametrize("group", [1, 3, 8])
def test_gqa_dk_dv_sum_over_query_heads(group):
    q, k, v = rand_qkv(1, 2 * group, 2, 60, 75, 32, torch.float16, DEVICE)
    grad_out = torch.randn_like(q)
    mask = ma.tree([-1, 0, 1, 1, 0, 4], prefix=69).to(DEVICE)
    _, _, grads = kernel_grads(q, k, v, mask, grad_out)
    check_backward(q, k, v, mask, grads=grads, grad_out=grad_out)


@needs_triton
def test_deterministic():
    q, k, v = rand_qkv(2, 4, 2, 130, 130, 32, torch.float16, DEVICE)
    grad_out = torch.randn_like(q)
    mask = ma.longformer(9, [0, 64]).to(DEVICE)
    first = kernel_grads(q, k, v, mask, grad_out, deterministic=True)[2]
    for _ in range(2):
        again = kernel_grads(q, k, v, mask, grad_out, deterministic=True)[2]
        assert all(torch.equal(a, b) for a, b in zip(first, again))


@needs_triton
def test_fully_masked_rows_zero_dq_finite_dkdv():
    q, k, v = rand_qkv(1, 2, 1, 40, 40, 32, torch.float16, DEVICE)
    valid = torch.ones(1, 40, dtype=torch.bool, device=DEVICE)
    valid[:, :10] = False
    mask = ma.padding(valid) & ma.causal()  # rows 0..9 see nothing
    grad_out = torch.randn_like(q)
    _, _, (dq, dk, dv) = kernel_grads(q, k, v, mask, grad_out)
    assert bool((dq[:, :, :10] == 0).all())
    assert all(bool(torch.isfinite(t).all()) for t in (dq, dk, dv))
    check_backward(q, k, v, mask, grads=(dq, dk, dv), grad_out=grad_out)


@needs_triton
def test_strided_inputs_and_grad_out():
    b, h, l, d = 1, 2, 66, 32
    q = torch.randn(b, l, h, d, device=DEVICE).half().transpose(1, 2)
    k = torch.randn(b, l, h, d, device=DEVICE).half().transpose(1, 2)
    v = torch.randn(b, l, h, d, device=DEVICE).half().transpose(1, 2)
    grad_out = torch.randn(b, l, h, d, device=DEVICE).half().transpose(1, 2)
    assert not grad_out.is_contiguous()
    _, _, grads = kernel_grads(q, k, v, ma.causal(), grad_out)
    check_backward(q, k, v, ma.causal(), grads=grads, grad_out=grad_out)


@needs_triton
@pytest.mark.parametrize("with_dlse", [False, True])
def test_prepare_writes_stats_zeroed_accumulator_and_clean_keys(with_dlse):
    # the preparation launch: delta = rowsum(dO * O) - dlse and a copy of lse, both padded with
    # zeros to the stats length; the dQ accumulator zeroed (the Hopper kernels' call, which
    # cleans K in shared memory itself); for the portable kernels K with its non-finite entries
    # zeroed
    from maskattn.kernels.backward import prepare
    g = torch.Generator(device=DEVICE).manual_seed(3)
    b, hq, hkv, lq, lk, d = 2, 4, 2, 100, 70, 32
    out = torch.randn(b, hq, lq, d, generator=g, device=DEVICE)
    do = torch.randn(b, lq, hq, d, generator=g, device=DEVICE).transpose(1, 2)  # strided
    lse = torch.randn(b, hq, lq, generator=g, device=DEVICE)
    dlse = torch.randn(b, hq, lq, generator=g, device=DEVICE) if with_dlse else None
    k = torch.randn(b, hkv, lk, d, generator=g, device=DEVICE)
    k[0, 1, 5, 3], k[1, 0, 69, 0], k[1, 1, 0, 31] = float("nan"), float("inf"), float("-inf")
    dq_acc = torch.full((b, hq, lq, d), 7.0, device=DEVICE)
    (delta, lse_pad, k_clean), _ = prepare(out, do, lse, dlse, k, 128, dq_acc)
    want = (out.double() * do.double()).sum(-1) - (dlse.double() if with_dlse else 0)
    assert delta.shape == lse_pad.shape == (b, hq, 128)
    torch.testing.assert_close(delta[..., :lq].double(), want, rtol=0, atol=1e-5)
    assert bool((delta[..., lq:] == 0).all()) and bool((lse_pad[..., lq:] == 0).all())
    assert torch.equal(lse_pad[..., :lq], lse)
    assert bool((dq_acc == 0).all())
    assert k_clean is None
    # the portable kernels' call: unpadded delta, lse passed through, no accumulator, K cleaned
    (delta2, lse2, k_clean2), _ = prepare(out, do, lse, dlse, k, lq, None)
    assert lse2 is lse and torch.equal(delta2, delta[..., :lq])
    assert torch.equal(k_clean2, torch.nan_to_num(k, nan=0.0, posinf=0.0, neginf=0.0))

"""The Hopper (Gluon) dK/dV kernel's gradients against the float64 reference, beside the
portable kernel on the same inputs (GPU only)."""
import pytest
import torch
from hypothesis import given, settings

import maskattn as ma
from attention_checks import check_backward, kernel_grads, rand_qkv
from maskattn.kernels import flash_bwd_sm90
from test_forward import attention_cases

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not (torch.cuda.is_available() and flash_bwd_sm90.HAVE_GLUON
         and torch.cuda.get_device_capability() == (9, 0)), reason="needs an sm_90 GPU and Gluon")]
DEV = "cuda"


@pytest.fixture(params=["sm90", "portable"])
def kernel(request, monkeypatch):
    monkeypatch.setattr(flash_bwd_sm90, "ENABLED", request.param == "sm90")
    return request.param


@settings(max_examples=30)
@given(attention_cases(max_len=600))
def test_random_masks(case):
    saved = flash_bwd_sm90.ENABLED
    flash_bwd_sm90.ENABLED = True
    try:
        dtype = torch.bfloat16 if case["seed"] % 2 else torch.float16
        d = {16: 72, 32: 96, 80: 128}[case["d"]]
        q, k, v = rand_qkv(case["batch"], case["hq"], case["hkv"], case["lq"], case["lk"], d, dtype, DEV,
                           seed=case["seed"])
        grad_out = torch.randn_like(q)
        mask = case["mask"].to(DEV)
        bm = ma.compile_mask(mask, case["lq"], case["lk"], q_offset=case["q_offset"], device=DEV)
        _, _, grads = kernel_grads(q, k, v, bm, grad_out)
        check_backward(q, k, v, mask, grads=grads, grad_out=grad_out, q_offset=case["q_offset"])
    finally:
        flash_bwd_sm90.ENABLED = saved


@pytest.mark.parametrize("lq,lk,hq,hkv", [(1000, 1000, 4, 1), (129, 2049, 2, 2), (2049, 777, 8, 1)])
@pytest.mark.parametrize("mask_name", ["causal", "sliding", "documents", "longformer", "padded"])
def test_families_odd_shapes(kernel, lq, lk, hq, hkv, mask_name):
    valid = torch.ones(2, lk, dtype=torch.bool)
    valid[:, lk // 2: lk // 2 + 7] = False
    masks = dict(causal=ma.causal(), sliding=ma.sliding_window(300),
                 documents=ma.documents([lk // 3, lk // 2, lk - lk // 3 - lk // 2]),
                 longformer=ma.longformer(64, [0, 5, lk // 2]), padded=ma.causal() & ma.padding(valid))
    mask = masks[mask_name].to(DEV)
    q, k, v = rand_qkv(2, hq, hkv, lq, lk, 128, torch.bfloat16, DEV)
    grad_out = torch.randn_like(q)
    if mask_name == "padded":  # NaN keys and values no query may see
        k, v = k.clone(), v.clone()
        k[:, :, lk // 2: lk // 2 + 7] = float("nan")
        v[:, :, lk // 2: lk // 2 + 7] = float("nan")
    _, _, grads = kernel_grads(q, k, v, mask, grad_out)
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    if mask_name == "padded":
        k, v = torch.nan_to_num(k), torch.nan_to_num(v)
    check_backward(q, k, v, mask, grads=grads, grad_out=grad_out)

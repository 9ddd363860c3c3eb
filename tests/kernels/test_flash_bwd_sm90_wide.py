"""The Hopper backward for head dims 129-256 (``flash_bwd_sm90_wide``) against the float64
reference (GPU only), beside the deterministic path (the portable kernels) on the same inputs.
These shapes are small, so the dispatch would send them to the portable kernels
(``column_bound``): the wide cases force the Hopper kernel."""
import pytest
import torch
from hypothesis import given, settings

import maskattn as ma
from attention_checks import (case_inputs, check_backward, check_family_gradients, check_hidden_key_tiles, count_calls,
                              kernel_grads, rand_qkv)
from maskattn.kernels import flash_bwd_sm90, flash_bwd_sm90_wide
from test_forward import attention_cases

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not (torch.cuda.is_available() and flash_bwd_sm90.HAVE_GLUON
         and torch.cuda.get_device_capability() == (9, 0)), reason="needs an sm_90 GPU and Gluon")]
DEV = "cuda"


def _force_wide(monkeypatch):
    """Run the wide kernel wherever it can run (small maps included); -> a list that gets an entry per call."""
    monkeypatch.setattr(flash_bwd_sm90_wide, "ENABLED", True)
    monkeypatch.setattr(flash_bwd_sm90, "column_bound", lambda *args: False)
    return count_calls(monkeypatch, flash_bwd_sm90_wide, "backward_wide")


@pytest.fixture(params=["wide", "deterministic"])
def path(request, monkeypatch):
    """-> the ``deterministic`` argument; the wide case checks that the Hopper kernel ran."""
    calls = _force_wide(monkeypatch)
    yield request.param == "deterministic"
    assert bool(calls) == (request.param == "wide")


@settings(max_examples=6, deadline=None)
@given(case=attention_cases(max_len=600))
def test_random_masks(case):
    # head dims 256 and 200 (zero-padded to 256 in shared memory), bf16; compile-bound like the
    # head-dim-128 kernel's test
    q, k, v, grad_out, mask, bm = case_inputs(case, (256, 200)[case["seed"] % 2], DEV)
    with pytest.MonkeyPatch.context() as mp:
        calls = _force_wide(mp)
        _, _, grads = kernel_grads(q, k, v, bm, grad_out, deterministic=False)
        # maps of one query tile (their counts unknown on the host) take the portable kernels
        assert bool(calls) == (bm.nonempty_tiles > 0)
    check_backward(q, k, v, mask, grads=grads, grad_out=grad_out, q_offset=case["q_offset"])


@pytest.mark.parametrize("lq,lk,hq,hkv,d", [(1000, 1000, 4, 1, 256), (129, 2049, 2, 2, 256), (2049, 777, 8, 1, 256),
                                          (1000, 1000, 4, 2, 200), (777, 1300, 2, 1, 136)])
@pytest.mark.parametrize("mask_name", ["causal", "sliding", "documents", "longformer", "padded"])
def test_families_odd_shapes(path, lq, lk, hq, hkv, d, mask_name):
    check_family_gradients(mask_name, lq, lk, hq, hkv, d, path, DEV)


@pytest.mark.parametrize("mask_name", ["sliding", "causal", "nan_keys"])
def test_sections_and_empty_key_tiles(monkeypatch, mask_name):
    # one program per key tile numbered in sections of one (batch, KV head): both 64-key halves of a
    # tile, the ring's slots and phases and the dQ staging carry from one half to the next; key
    # tiles no query sees write zero dK / dV
    calls = _force_wide(monkeypatch)
    monkeypatch.setattr(flash_bwd_sm90, "column_section", lambda *args: 1)
    check_hidden_key_tiles(mask_name, 256, DEV)
    assert calls


def test_strided_inputs_grad_lse_and_fully_masked_rows(path):
    # q/k/v as views of one packed (B, L, 3, H, D) tensor, a non-contiguous grad_out, a gradient on
    # lse, fp16, and rows that see nothing (zero dQ, finite dK / dV)
    b, h, l, d = 2, 4, 700, 256
    qkv = torch.randn(b, l, 3, h, d, device=DEV, dtype=torch.float16)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    grad_out = torch.randn(b, l, h, d, device=DEV, dtype=torch.float16).transpose(1, 2)
    grad_lse = torch.randn(b, h, l, device=DEV)
    valid = torch.ones(b, l, dtype=torch.bool, device=DEV)
    valid[:, :200] = False
    mask = ma.causal() & ma.sliding_window(200) & ma.padding(valid)
    _, _, grads = kernel_grads(q, k, v, mask, grad_out, grad_lse=grad_lse, deterministic=path)
    assert bool((grads[0][:, :, :200] == 0).all())
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    check_backward(q, k, v, mask, grads=grads, grad_out=grad_out, grad_lse=grad_lse)


@pytest.mark.parametrize("name,wide", [("causal", True), ("longformer", False)])
def test_dispatch(name, wide, monkeypatch):
    # benchmark-sized maps at head dim 256: the wide kernel unless the map is column-bound or
    # determinism is asked for
    masks = dict(causal=ma.causal(), longformer=ma.longformer(256, list(range(64))))
    calls = count_calls(monkeypatch, flash_bwd_sm90_wide, "backward_wide")
    L = 8192
    bm = ma.compile_mask(masks[name].to(DEV), L, L, device=DEV)
    q, k, v = rand_qkv(1, 16, 16, L, L, 256, torch.bfloat16, DEV)
    grad_out = torch.randn_like(q)
    kernel_grads(q, k, v, bm, grad_out)
    assert len(calls) == int(wide)
    kernel_grads(q, k, v, bm, grad_out, deterministic=True)
    assert len(calls) == int(wide)

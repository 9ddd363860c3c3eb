"""The Hopper (Gluon) one-pass backward against the float64 reference (GPU only), beside the
deterministic path (the portable kernels) on the same inputs. These shapes are small, so the
dispatch would send them to the portable kernels (``column_bound``): the sm90 cases force the
Hopper kernel."""
import pytest
import torch
from hypothesis import given, settings

import maskattn as ma
from attention_checks import (case_inputs, check_backward, check_family_gradients, check_hidden_key_tiles, count_calls,
                              kernel_grads, rand_qkv)
from maskattn.kernels import flash_bwd_sm90, split_columns
from test_forward import attention_cases

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not (torch.cuda.is_available() and flash_bwd_sm90.HAVE_GLUON
         and torch.cuda.get_device_capability() == (9, 0)), reason="needs an sm_90 GPU and Gluon")]
DEV = "cuda"


def _force_sm90(monkeypatch):
    """Run the Hopper kernel wherever it can run (small maps, one-query-tile maps included);
    -> a list that gets an entry per call."""
    monkeypatch.setattr(flash_bwd_sm90, "ENABLED", True)
    monkeypatch.setattr(flash_bwd_sm90, "column_bound", lambda *args: False)
    monkeypatch.setattr(flash_bwd_sm90, "supported", lambda q, bm, d_tma, softcap, kv_heads: (
        softcap is None and d_tma in flash_bwd_sm90.HEAD_DIMS and q.dtype in (torch.float16, torch.bfloat16)
        and bm.block_k == 128 and bm.block_q % 64 == 0))
    return count_calls(monkeypatch, flash_bwd_sm90, "backward_sm90")


@pytest.fixture(params=["sm90", "deterministic"])
def path(request, monkeypatch):
    """-> the ``deterministic`` argument; the sm90 case checks that the Hopper kernel ran."""
    calls = _force_sm90(monkeypatch)
    yield request.param == "deterministic"
    assert bool(calls) == (request.param == "sm90")


@settings(max_examples=10, deadline=None)
@given(case=attention_cases(max_len=600))
def test_random_masks(case):
    # head dims 64 and 128 (the kernel's two), bf16 (fp16 runs in the tests below); lengths of one
    # query tile are forced onto the kernel too. Most examples are new Triton specializations of
    # the forward and backward kernels (lengths), so this test is compile-bound: allow minutes.
    q, k, v, grad_out, mask, bm = case_inputs(case, flash_bwd_sm90.HEAD_DIMS[case["seed"] % 2], DEV)
    with pytest.MonkeyPatch.context() as mp:
        _force_sm90(mp)
        _, _, grads = kernel_grads(q, k, v, bm, grad_out, deterministic=False)
    check_backward(q, k, v, mask, grads=grads, grad_out=grad_out, q_offset=case["q_offset"])


@pytest.mark.parametrize("lq,lk,hq,hkv,d", [(1000, 1000, 4, 1, 128), (129, 2049, 2, 2, 128), (2049, 777, 8, 1, 128),
                                          (1000, 1000, 4, 1, 64), (2049, 777, 8, 1, 64)])
@pytest.mark.parametrize("mask_name", ["causal", "sliding", "documents", "longformer", "padded"])
def test_families_odd_shapes(path, lq, lk, hq, hkv, mask_name, d):
    check_family_gradients(mask_name, lq, lk, hq, hkv, d, path, DEV)


@pytest.mark.parametrize("d", [128, 64])
@pytest.mark.parametrize("mask_name", ["sliding", "documents", "nan_keys"])
def test_persistent_grid_many_items_per_program(monkeypatch, mask_name, d):
    # three programs walk every key tile (snake order), dK / dV of one tile staged in shared
    # memory while the next tile's loads land: ring slots, phases, the K / V hand-over and the
    # dS / dQ buffers carry from one key tile to the next; key tiles no query sees (empty
    # columns) still write zero dK / dV; Lk is not a multiple of 64 (the last store is clipped)
    calls = _force_sm90(monkeypatch)
    monkeypatch.setattr(flash_bwd_sm90, "sm_count", lambda device: 3)
    monkeypatch.setattr(flash_bwd_sm90, "PERSISTENT_MAX_MEAN_TILES", 10**9)
    check_hidden_key_tiles(mask_name, d, DEV)
    assert calls


@pytest.mark.parametrize("d", [128, 64])
@pytest.mark.parametrize("mask_name", ["sliding", "documents", "nan_keys", "causal"])
def test_key_tiles_cut_into_parts(monkeypatch, mask_name, d):
    # every key tile of more than two blocks' work cut into parts of about two 64-row blocks
    # (``split_columns``), dealt to three programs: parts that start or stop inside a tile's column
    # and inside a query head's (GQA 2), their dK / dV added in fp32 and cast in after the launch;
    # whole key tiles (the hidden ones: zero dK / dV) stored as usual beside them
    calls = _force_sm90(monkeypatch)
    cuts = count_calls(monkeypatch, split_columns, "finish")
    monkeypatch.setattr(flash_bwd_sm90, "column_bound", lambda *args: True)
    monkeypatch.setattr(flash_bwd_sm90, "sm_count", lambda device: 3)
    monkeypatch.setattr(flash_bwd_sm90, "PERSISTENT_MAX_MEAN_TILES", 10**9)
    monkeypatch.setattr(split_columns, "SPLIT_SHARE", 0.0)
    check_hidden_key_tiles(mask_name, d, DEV)
    assert calls and cuts


def test_benchmark_longformer_cut(monkeypatch):
    # the benchmark's Longformer map at 8k, 16 heads, on the whole GPU: its global key tiles are cut
    calls = count_calls(monkeypatch, flash_bwd_sm90, "backward_sm90")
    cuts = count_calls(monkeypatch, split_columns, "finish")
    L = 8192
    mask = ma.longformer(256, list(range(64))).to(DEV)
    q, k, v = rand_qkv(1, 16, 16, L, L, 128, torch.bfloat16, DEV)
    grad_out = torch.randn_like(q)
    _, _, grads = kernel_grads(q, k, v, mask, grad_out)
    assert calls and cuts
    _, _, portable = kernel_grads(q, k, v, mask, grad_out, deterministic=True)
    for g, p in zip(grads, portable):  # both bf16 from fp32 sums: a few bf16 steps of the largest
        assert float((g.float() - p.float()).abs().max()) <= 0.02 * float(p.float().abs().max()) + 1e-3


@pytest.mark.parametrize("d", [128, 64])
@pytest.mark.parametrize("section", [1, 3])
def test_one_program_per_key_tile_in_sections(monkeypatch, section, d):
    # one program per key tile, numbered section by section (``column_section``; forced here): one
    # (batch, KV head) pair per section, or three of the four with the last section holding the rest
    calls = _force_sm90(monkeypatch)
    monkeypatch.setattr(flash_bwd_sm90, "PERSISTENT_MAX_MEAN_TILES", 0)
    monkeypatch.setattr(flash_bwd_sm90, "column_section", lambda *args: section)
    lq = lk = 1100
    q, k, v = rand_qkv(2, 4, 2, lq, lk, d, torch.bfloat16, DEV, seed=6)
    mask = ma.causal().to(DEV)
    grad_out = torch.randn_like(q)
    _, _, grads = kernel_grads(q, k, v, mask, grad_out, deterministic=False)
    assert calls
    check_backward(q, k, v, mask, grads=grads, grad_out=grad_out)


@pytest.mark.parametrize("d", [124, 60])
def test_head_dim_padded(monkeypatch, d):
    # head dims 121-127 (57-63) are padded to 128 (64) for the copy engine: dK / dV leave the
    # kernel through 128 (64) wide buffers and are copied out
    calls = _force_sm90(monkeypatch)
    q, k, v = rand_qkv(2, 4, 2, 700, 650, d, torch.bfloat16, DEV, seed=7)
    grad_out = torch.randn_like(q)
    mask = ma.causal() & ma.sliding_window(300)
    _, _, grads = kernel_grads(q, k, v, mask, grad_out, deterministic=False)
    assert calls
    check_backward(q, k, v, mask, grads=grads, grad_out=grad_out)


@pytest.mark.parametrize("d", [128, 64])
def test_strided_inputs_and_grad_lse(path, d):
    # q/k/v as views of one packed (B, L, 3, H, D) tensor, a non-contiguous grad_out, a gradient on lse
    b, h, l = 2, 4, 700
    qkv = torch.randn(b, l, 3, h, d, device=DEV, dtype=torch.bfloat16)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    grad_out = torch.randn(b, l, h, d, device=DEV, dtype=torch.bfloat16).transpose(1, 2)
    grad_lse = torch.randn(b, h, l, device=DEV)
    mask = ma.causal() & ma.sliding_window(200)
    _, _, grads = kernel_grads(q, k, v, mask, grad_out, grad_lse=grad_lse, deterministic=path)
    check_backward(q, k, v, mask, grads=grads, grad_out=grad_out, grad_lse=grad_lse)


@pytest.mark.parametrize("d", [128, 64])
def test_fully_masked_rows(path, d):
    # rows that see nothing: zero dQ, finite dK / dV
    lq = lk = 640
    valid = torch.ones(1, lk, dtype=torch.bool)
    valid[:, :200] = False
    mask = (ma.causal() & ma.padding(valid)).to(DEV)
    q, k, v = rand_qkv(1, 2, 1, lq, lk, d, torch.float16, DEV)
    grad_out = torch.randn_like(q)
    _, _, (dq, dk, dv) = kernel_grads(q, k, v, mask, grad_out, deterministic=path)
    assert bool((dq[:, :, :200] == 0).all())
    assert all(bool(torch.isfinite(g).all()) for g in (dq, dk, dv))
    check_backward(q, k, v, mask, grads=(dq, dk, dv), grad_out=grad_out)


@pytest.mark.parametrize("name,sm90", [("causal", True), ("documents", True), ("longformer", True)])
def test_dispatch(name, sm90, monkeypatch):
    # benchmark-sized maps: the Hopper kernel (Longformer's global key tiles cut into parts) unless
    # determinism is asked for
    masks = dict(causal=ma.causal(), documents=ma.documents([1024] * 8), longformer=ma.longformer(256, list(range(64))))
    calls = count_calls(monkeypatch, flash_bwd_sm90, "backward_sm90")
    L = 8192
    bm = ma.compile_mask(masks[name].to(DEV), L, L, device=DEV)
    q, k, v = rand_qkv(1, 16, 16, L, L, 128, torch.bfloat16, DEV)
    grad_out = torch.randn_like(q)
    kernel_grads(q, k, v, bm, grad_out)
    assert len(calls) == int(sm90)
    kernel_grads(q, k, v, bm, grad_out, deterministic=True)
    assert len(calls) == int(sm90)

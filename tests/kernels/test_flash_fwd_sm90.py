"""The Hopper (Gluon) forward kernel against the float64 reference, beside the portable kernel
on the same inputs (GPU only; both kernels serve ``attention()`` on an H100/H200)."""
import pytest
import torch
from hypothesis import given, settings

import maskattn as ma
from maskattn import reference
from attention_checks import check_close, check_forward, rand_qkv
from maskattn.kernels import flash_fwd_sm90
from test_forward import attention_cases

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not (torch.cuda.is_available() and flash_fwd_sm90.HAVE_GLUON
         and torch.cuda.get_device_capability() == (9, 0)), reason="needs an sm_90 GPU and Gluon")]
DEV = "cuda"
# every shared-memory width of ``HEAD_CONFIGS`` (64, 128, 256), exact and zero-padded
HEAD_DIMS = (40, 64, 72, 96, 128, 200, 256)


@pytest.fixture(params=["sm90", "portable"])
def kernel(request, monkeypatch):
    monkeypatch.setattr(flash_fwd_sm90, "ENABLED", request.param == "sm90")
    return request.param


def _used_sm90(q, bm, softcap=None):
    from maskattn.kernels.tma import padded_dim
    return flash_fwd_sm90.supported(q, bm, padded_dim(q.shape[-1], q.dtype), softcap)


@settings(max_examples=40)
@given(attention_cases(max_len=700))
def test_random_masks(case):
    # both kernels on the same case (hypothesis examples share one fixture scope, so no monkeypatch)
    saved = flash_fwd_sm90.ENABLED
    for enabled in (True, False):
        flash_fwd_sm90.ENABLED = enabled
        try:
            dtype = torch.bfloat16 if case["seed"] % 2 else torch.float16
            d = HEAD_DIMS[case["seed"] % len(HEAD_DIMS)]
            q, k, v = rand_qkv(case["batch"], case["hq"], case["hkv"], case["lq"], case["lk"], d, dtype, DEV,
                               seed=case["seed"])
            mask = case["mask"].to(DEV)
            bq, bk = (128, 128) if case["seed"] % 3 else (64, 64)
            bm = ma.compile_mask(mask, case["lq"], case["lk"], q_offset=case["q_offset"], block_q=bq, block_k=bk,
                                 device=DEV)
            assert _used_sm90(q, bm) == (enabled and bq == 128)  # 64-row tiles: portable kernel
            out, lse = ma.attention(q, k, v, bm, return_lse=True)
            check_forward(q, k, v, mask, out=out, lse=lse, q_offset=case["q_offset"])
        finally:
            flash_fwd_sm90.ENABLED = saved


@pytest.mark.parametrize("lq,lk,d,hq,hkv", [(1000, 1000, 128, 4, 1), (129, 2049, 72, 2, 2), (2049, 777, 96, 3, 1),
                                          (4096, 4096, 80, 2, 2), (1000, 1500, 64, 4, 2), (777, 2049, 32, 2, 1),
                                          (1500, 1000, 256, 4, 2), (2049, 1025, 160, 3, 1)])
@pytest.mark.parametrize("mask_name", ["causal", "sliding", "documents", "longformer", "full"])
def test_families_odd_shapes(kernel, lq, lk, d, hq, hkv, mask_name):
    masks = dict(causal=ma.causal(), sliding=ma.sliding_window(300), documents=ma.documents([lk // 3, lk // 2, lk - lk // 3 - lk // 2]),
                 longformer=ma.longformer(64, [0, 5, lk // 2]), full=ma.full())
    mask = masks[mask_name].to(DEV)
    q, k, v = rand_qkv(2, hq, hkv, lq, lk, d, torch.bfloat16, DEV)
    out, lse = ma.attention(q, k, v, mask, return_lse=True)
    check_forward(q, k, v, mask, out=out, lse=lse)


@pytest.mark.parametrize("lq", [65, 127, 129, 1000, 1025])
@pytest.mark.parametrize("group", [2, 8])
def test_lengths_and_gqa_of_the_conventions(lq, group):
    # the convention's odd lengths (those that take the training kernel: longer than 64
    # queries), q_len != kv_len both ways, GQA 2 and 8, fp16
    assert flash_fwd_sm90.ENABLED  # the default
    for lk in (lq + 63, max(1, lq - 60)):
        q, k, v = rand_qkv(1, 2 * group, 2, lq, lk, 128, torch.float16, DEV, seed=lq + lk)
        mask = ma.causal() | ma.sliding_window(40, 40)
        bm = ma.compile_mask(mask.to(DEV), lq, lk, device=DEV)
        assert _used_sm90(q, bm)
        out, lse = ma.attention(q, k, v, bm, return_lse=True)
        check_forward(q, k, v, mask, out=out, lse=lse)


def test_strided_inputs_and_fully_masked_rows(kernel):
    # (B, L, H, D) storage viewed as (B, H, L, D); queries 0..99 see nothing (query_mask)
    base = torch.randn(2, 1500, 4, 128, device=DEV, dtype=torch.bfloat16)
    q = base.transpose(1, 2)
    k, v = base[:, :, :2].transpose(1, 2), base[:, :, 2:].transpose(1, 2)
    valid = torch.arange(1500) >= 100
    mask = (ma.causal() & ma.query_mask(valid)).to(DEV)
    out, lse = ma.attention(q, k, v, mask, return_lse=True)
    check_forward(q, k, v, mask, out=out, lse=lse)
    assert bool((out[:, :, :100] == 0).all()) and bool((lse[:, :, :100] == float("-inf")).all())


def test_nan_keys_and_values_no_query_may_see(kernel):
    # unwritten cache slots (NaN K and V) inside partial tiles must not reach rows that cannot see them
    q, k, v = rand_qkv(1, 2, 2, 300, 300, 128, torch.bfloat16, DEV)
    k[:, :, 250:260] = float("nan")
    v[:, :, 250:260] = float("nan")
    mask = (ma.sliding_window(200) & ma.causal()).to(DEV)
    sees_nan = mask.materialize(300, 300, device=DEV)[0, 0, :, 250:260].any(-1)
    out = ma.attention(q, k, v, mask)
    assert torch.isfinite(out[0, :, ~sees_nan]).all()
    assert torch.isnan(out[0, :, sees_nan]).all()


@pytest.mark.parametrize("d", [128, 64, 256])
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
@pytest.mark.parametrize("mask_name", ["causal", "sliding", "documents", "padded", "nan_values"])
def test_persistent_grid_many_items_per_program(monkeypatch, mask_name, dynamic, d):
    # three programs share every item (static snake, or taken from the counter; forced for any
    # map): ring slots, phases and the Q hand-over carry from one item to the next, items
    # without any key (fully masked rows) are skipped by the producer and written as 0 / -inf;
    # at every shared-memory width (ring depth, key block and V cleaning differ)
    monkeypatch.setattr(flash_fwd_sm90, "sm_count", lambda device: 3)
    monkeypatch.setattr(flash_fwd_sm90, "dynamic_schedule", lambda *args: dynamic)
    monkeypatch.setattr(flash_fwd_sm90, "ENABLED", True)
    lq = lk = 1100
    q, k, v = rand_qkv(2, 4, 2, lq, lk, d, torch.bfloat16, DEV)
    valid = torch.arange(lk) < 700
    keys = torch.ones(2, lk, dtype=torch.bool)
    keys[:, 600:605] = False  # no query sees these keys: their tiles are partial for everyone
    masks = dict(causal=ma.causal(), sliding=ma.sliding_window(200) & ma.causal(),
                 documents=ma.documents([300, 5, 500, 295]), padded=ma.causal() & ma.query_mask(valid),
                 nan_values=ma.sliding_window(150) & ma.causal() & ma.padding(keys))
    mask = masks[mask_name].to(DEV)
    bm = ma.compile_mask(mask, lq, lk, device=DEV)
    assert _used_sm90(q, bm)
    kn, vn = k, v
    if mask_name == "nan_values":  # NaN keys and values no query may see, inside partial tiles
        kn, vn = k.clone(), v.clone()
        kn[:, :, 600:605] = float("nan")
        vn[:, :, 600:605] = float("nan")
    out, lse = ma.attention(q, kn, vn, bm, return_lse=True)
    assert not torch.isnan(out).any()
    check_forward(q, k, v, mask, out=out, lse=lse)


@pytest.mark.parametrize("section", [1, 3])
@pytest.mark.parametrize("mask_name", ["causal", "longformer"])
def test_counter_items_in_sections(monkeypatch, mask_name, section):
    # the counter hands items out section by section (``counter_section``; forced here): one query
    # head per section, or three of the eight (batch, head) pairs with the last section holding the
    # rest; three programs, so that items of several sections run side by side
    monkeypatch.setattr(flash_fwd_sm90, "sm_count", lambda device: 3)
    monkeypatch.setattr(flash_fwd_sm90, "dynamic_schedule", lambda *args: True)
    monkeypatch.setattr(flash_fwd_sm90, "counter_section", lambda *args: section)
    monkeypatch.setattr(flash_fwd_sm90, "ENABLED", True)
    lq = lk = 1100
    q, k, v = rand_qkv(2, 4, 2, lq, lk, 128, torch.bfloat16, DEV, seed=4)
    masks = dict(causal=ma.causal(), longformer=ma.longformer(100, [0, 5, 700]))
    mask = masks[mask_name].to(DEV)
    bm = ma.compile_mask(mask, lq, lk, device=DEV)
    assert _used_sm90(q, bm)
    out, lse = ma.attention(q, k, v, bm, return_lse=True)
    check_forward(q, k, v, mask, out=out, lse=lse)


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_persistent_grid_nan_some_rows_see(monkeypatch, dynamic):
    # a NaN value that some rows may see (their outputs are not specified): every other row of
    # every item of the same program (which the static schedule may walk a second time, V
    # cleaned) is exact
    monkeypatch.setattr(flash_fwd_sm90, "sm_count", lambda device: 3)
    monkeypatch.setattr(flash_fwd_sm90, "dynamic_schedule", lambda *args: dynamic)
    monkeypatch.setattr(flash_fwd_sm90, "ENABLED", True)
    lq = lk = 1100
    q, k, v = rand_qkv(2, 4, 2, lq, lk, 128, torch.bfloat16, DEV, seed=3)
    mask = (ma.sliding_window(150) & ma.causal()).to(DEV)
    bm = ma.compile_mask(mask, lq, lk, device=DEV)
    assert _used_sm90(q, bm)
    vn = v.clone()
    vn[1, 0, 600:603] = float("nan")  # batch 1, KV head 0: query heads 0 and 1
    out, lse = ma.attention(q, k, vn, bm, return_lse=True)
    sees_nan = mask.materialize(lq, lk, device=DEV)[0, 0, :, 600:603].any(-1)  # (Lq,)
    rows = torch.ones(2, 4, lq, dtype=torch.bool, device=DEV)
    rows[1, :2] = ~sees_nan
    ref_o, ref_l = reference.attention(q, k, v, mask)
    low_o, low_l = reference.attention_low_precision(q, k, v, mask)
    check_close("out", out[rows], ref_o[rows], low_o[rows], torch.bfloat16, 2)
    check_close("lse", lse[rows], ref_l[rows], low_l[rows], torch.bfloat16, 2)


@pytest.mark.parametrize("d", [128, 64, 256])
@pytest.mark.parametrize("scale", [0.3, -0.2, 0.0])
def test_scale_signs(kernel, scale, d):
    # the masked path folds the scale into the exponent's multiply-add, filling masked scores
    # before the scale with -inf (scale > 0) or +inf (scale < 0); scale 0 (uniform weights over
    # the allowed keys) keeps the fill after the scale: inf * 0 would be NaN. Partial tiles of
    # every kind here: sliding, documents, a query_mask (rows with nothing allowed) and masked
    # NaN / Inf keys beside allowed ones
    lq = lk = 1000
    q, k, v = rand_qkv(1, 4, 2, lq, lk, d, torch.bfloat16, DEV, seed=d)
    k[:, :, 610:620] = float("nan")
    k[:, :, 700:705] = float("inf")
    valid = torch.arange(lq) >= 70
    good_keys = ma.padding(((torch.arange(lk) < 610) | (torch.arange(lk) >= 705))[None])
    for mask in (ma.sliding_window(300) & ~ma.sliding_window(150) & ma.causal(),
                 ma.documents([300, 309, 391]) & ma.query_mask(valid)):
        mask = (mask & good_keys).to(DEV)
        bm = ma.compile_mask(mask, lq, lk, device=DEV)
        assert _used_sm90(q, bm) == (kernel == "sm90")
        out, lse = ma.attention(q, k, v, bm, scale=scale, return_lse=True)
        assert not torch.isnan(out).any()
        check_forward(q, k, v, mask, out=out, lse=lse, scale=scale)

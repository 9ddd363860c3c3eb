"""Forward pass against the float64 reference (CPU: Triton interpreter and the block-sparse
PyTorch path). Sizes stay small: the interpreter runs programs one by one."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from attention_checks import check_forward, rand_qkv
from helpers import Ctx, composed_masks, q_offsets
from maskattn.kernels import torch_blocksparse
from maskattn.kernels.config import interpreting

needs_triton = pytest.mark.skipif(not (torch.cuda.is_available() or interpreting()),
                                  reason="Triton kernels need CUDA or TRITON_INTERPRET=1")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BLOCKS = [(32, 32), (64, 32), (32, 64), (16, 128), (64, 128)]


@st.composite
def attention_cases(draw, max_len=150):
    lq, lk = draw(st.integers(1, max_len)), draw(st.integers(1, max_len))
    batch = draw(st.sampled_from([1, 2]))
    hkv = draw(st.sampled_from([1, 2]))
    group = draw(st.sampled_from([1, 2, 3, 4]))
    ctx = Ctx(lq, lk, batch, hkv * group)
    return dict(
        mask=draw(composed_masks(ctx, 2)), lq=lq, lk=lk, batch=batch, hkv=hkv, hq=hkv * group,
        d=draw(st.sampled_from([16, 32, 80])), dtype=draw(st.sampled_from([torch.float16, torch.float32])),
        softcap=draw(st.sampled_from([None, None, 5.0])), q_offset=draw(q_offsets(ctx)),
        block=draw(st.sampled_from(BLOCKS)), seed=draw(st.integers(0, 2**20)))


def _run(case, fn):
    q, k, v = rand_qkv(case["batch"], case["hq"], case["hkv"], case["lq"], case["lk"], case["d"], case["dtype"],
                       DEVICE, seed=case["seed"])
    mask = case["mask"].to(DEVICE)
    bq, bk = case["block"]
    bm = ma.compile_mask(mask, case["lq"], case["lk"], q_offset=case["q_offset"], block_q=bq, block_k=bk, device=DEVICE)
    out, lse = fn(q, k, v, bm, case["softcap"])
    check_forward(q, k, v, mask, out=out, lse=lse, q_offset=case["q_offset"], softcap=case["softcap"])


@needs_triton
@settings(max_examples=30)
@given(attention_cases())
def test_triton_forward_matches_reference(case):
    _run(case, lambda q, k, v, bm, cap: ma.attention(q, k, v, bm, softcap=cap, return_lse=True))


@settings(max_examples=40)
@given(attention_cases(max_len=300))
def test_blocksparse_torch_forward_matches_reference(case):
    case["device"] = "cpu"
    scale = case["d"] ** -0.5
    q, k, v = rand_qkv(case["batch"], case["hq"], case["hkv"], case["lq"], case["lk"], case["d"], case["dtype"],
                       seed=case["seed"])
    bq, bk = case["block"]
    bm = ma.compile_mask(case["mask"], case["lq"], case["lk"], q_offset=case["q_offset"], block_q=bq, block_k=bk)
    out, lse = torch_blocksparse.blocksparse_attention(q, k, v, bm, scale, case["softcap"])
    check_forward(q, k, v, case["mask"], out=out, lse=lse, q_offset=case["q_offset"], softcap=case["softcap"])


@needs_triton
@pytest.mark.parametrize("lq,lk", [(1, 1), (2, 17), (17, 2), (63, 65), (65, 63), (127, 129), (129, 127), (1, 129)])
def test_lengths_not_tile_multiples(lq, lk):
    q, k, v = rand_qkv(1, 2, 1, lq, lk, 32, torch.float16, DEVICE)
    mask = ma.causal() | ma.sliding_window(3, 5)
    out, lse = ma.attention(q, k, v, mask, return_lse=True)
    check_forward(q, k, v, mask, out=out, lse=lse)


@needs_triton
@pytest.mark.parametrize("d", [16, 64, 80, 96, 128, 192, 256])
def test_head_dims(d):
    q, k, v = rand_qkv(1, 2, 2, 70, 70, d, torch.float16, DEVICE)
    out, lse = ma.attention(q, k, v, ma.causal(), return_lse=True)
    check_forward(q, k, v, ma.causal(), out=out, lse=lse)


@needs_triton
@pytest.mark.parametrize("group", [1, 2, 3, 4, 8])
def test_gqa_ratios(group):
    q, k, v = rand_qkv(2, 2 * group, 2, 50, 80, 32, torch.float16, DEVICE)
    mask = ma.documents([30, 50]).to(DEVICE)
    out, lse = ma.attention(q, k, v, mask, return_lse=True)
    check_forward(q, k, v, mask, out=out, lse=lse)


@needs_triton
def test_bfloat16_and_fp32():
    for dtype in (torch.bfloat16, torch.float32):
        q, k, v = rand_qkv(1, 2, 1, 90, 90, 64, dtype, DEVICE)
        mask = ma.longformer(4, [0, 50]).to(DEVICE)
        out, lse = ma.attention(q, k, v, mask, return_lse=True)
        check_forward(q, k, v, mask, out=out, lse=lse)


@needs_triton
def test_fully_masked_rows_give_zero_and_minus_inf():
    q, k, v = rand_qkv(2, 2, 2, 40, 60, 32, torch.float16, DEVICE)
    valid = torch.ones(2, 60, dtype=torch.bool, device=DEVICE)
    valid[1] = False  # batch row 1: no key at all
    mask = ma.padding(valid) & ma.causal()
    out, lse = ma.attention(q, k, v, mask, q_offset=-5, return_lse=True)  # rows 0..4 see nothing either
    assert not torch.isnan(out).any()
    assert bool((out[1] == 0).all()) and bool((lse[1] == float("-inf")).all())
    assert bool((out[0, :, :5] == 0).all()) and bool((lse[0, :, :5] == float("-inf")).all())
    check_forward(q, k, v, mask, out=out, lse=lse, q_offset=-5)


@needs_triton
def test_non_contiguous_inputs():
    # (B, L, H, D) storage seen as (B, H, L, D), and a K sliced out of a fused KV buffer
    b, h, l, d = 2, 4, 70, 32
    q = torch.randn(b, l, h, d, device=DEVICE).half().transpose(1, 2)
    kv = torch.randn(b, 2, l + 3, 2, d, device=DEVICE).half()
    k, v = kv[:, 0, 3:, :, :].transpose(1, 2), kv[:, 1, 3:, :, :].transpose(1, 2)
    assert not (q.is_contiguous() or k.is_contiguous())
    out, lse = ma.attention(q, k, v, ma.causal(), return_lse=True)
    check_forward(q, k, v, ma.causal(), out=out, lse=lse)
    strided_d = torch.randn(b, h, l, 2 * d, device=DEVICE).half()[..., ::2]  # last dim strided: copied
    out2 = ma.attention(strided_d, k[:, :2].repeat(1, 2, 1, 1), v[:, :2].repeat(1, 2, 1, 1), ma.causal())
    assert out2.shape == (b, h, l, d)


@needs_triton
def test_softcap_and_scale():
    q, k, v = rand_qkv(1, 2, 1, 60, 60, 32, torch.float16, DEVICE)
    q = q * 4
    out, lse = ma.attention(q, k, v, ma.causal(), scale=0.3, softcap=20.0, return_lse=True)
    check_forward(q, k, v, ma.causal(), out=out, lse=lse, scale=0.3, softcap=20.0)


@needs_triton
@pytest.mark.parametrize("lq", [3, 150])  # decode path and the training kernel
@pytest.mark.parametrize("mask", [ma.causal(), ma.sliding_window(40, 0) | ma.causal()], ids=["causal", "window"])
def test_row_max_growing_across_key_blocks(lq, mask):
    # Later keys score ever higher (by ~10 log2 units per 32-key block), so the running row
    # max grows at every block: the O accumulator must be rescaled each time, on full and on
    # partial tiles.
    q, k, v = rand_qkv(1, 2, 1, lq, 150, 32, torch.float16, DEVICE)
    q = torch.ones_like(q)
    k = (k * 0.1 + (torch.arange(150, device=DEVICE) / 32).floor()[:, None] * 1.3).half()
    bm = ma.compile_mask(mask, lq, 150, q_offset=150 - lq, block_q=32, block_k=32, device=DEVICE)
    out, lse = ma.attention(q, k, v, bm, return_lse=True)
    check_forward(q, k, v, mask, out=out, lse=lse, q_offset=150 - lq)


@needs_triton
def test_empty_tiles_are_never_read():
    # keys 64..127 are padding: their whole key tiles are EMPTY for every query tile.
    # NaN planted there must not reach any output.
    q, k, v = rand_qkv(1, 2, 2, 160, 160, 32, torch.float16, DEVICE)
    valid = torch.ones(1, 160, dtype=torch.bool, device=DEVICE)
    valid[:, 64:128] = False
    mask = ma.padding(valid)
    bm = ma.compile_mask(mask, 160, 160, block_q=32, block_k=32, device=DEVICE)
    kn, vn = k.clone(), v.clone()
    kn[:, :, 64:128] = float("nan")
    vn[:, :, 64:128] = float("nan")
    out, lse = ma.attention(q, kn, vn, bm, return_lse=True)
    check_forward(q, k, v, mask, out=out, lse=lse)


def test_mask_objects_are_compiled_once(monkeypatch):
    import maskattn.api as api
    calls = []
    real = api.compile_mask
    monkeypatch.setattr(api, "compile_mask", lambda *a, **kw: calls.append(a) or real(*a, **kw))
    q, k, v = rand_qkv(1, 2, 1, 40, 40, 16, torch.float32)
    mask = ma.sliding_window(7)
    first = ma.attention(q, k, v, mask)
    second = ma.attention(q, k, v, mask)
    assert len(calls) == 1 and torch.equal(first, second)
    ma.attention(q[:, :, :20], k, v, mask)  # other lengths: a second map
    assert len(calls) == 2


def test_torch_path_is_used_without_interpreter(monkeypatch):
    import maskattn.kernels.op as op
    monkeypatch.setattr(op, "interpreting", lambda: False)
    q, k, v = rand_qkv(1, 4, 2, 50, 70, 32, torch.float32)
    out, lse = ma.attention(q, k, v, ma.tree([-1, 0, 0, 1, 1], prefix=65), return_lse=True)
    check_forward(q, k, v, ma.tree([-1, 0, 0, 1, 1], prefix=65), out=out, lse=lse)

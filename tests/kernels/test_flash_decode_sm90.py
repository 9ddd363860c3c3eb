"""Split-KV decoding on the Hopper kernel (``flash_decode_sm90``: short query blocks with 128 or
more packed rows per KV head, e.g. tree verification) against the float64 reference (GPU only)."""
import pytest
import torch

import maskattn as ma
from attention_checks import check_close, check_forward, rand_qkv
from helpers import random_parents
from maskattn import reference
from maskattn.kernels import flash_decode_sm90, flash_fwd_sm90

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not (torch.cuda.is_available() and flash_fwd_sm90.HAVE_GLUON
         and torch.cuda.get_device_capability() == (9, 0)), reason="needs an sm_90 GPU and Gluon")]
DEV = "cuda"


@pytest.fixture
def launches(monkeypatch):
    """Counts the Hopper split-KV launches (so each test knows which kernel it checked); small
    cases take the Hopper kernel too (no minimum of units)."""
    monkeypatch.setattr(flash_decode_sm90, "MIN_UNITS", 1)
    calls = []
    real = flash_decode_sm90.split_kv_partials

    def spy(*args, **kwargs):
        calls.append(args[-1])  # the split count
        return real(*args, **kwargs)

    monkeypatch.setattr(flash_decode_sm90, "split_kv_partials", spy)
    return calls


def _mask(name, lq, lk):
    if name == "tree":
        return ma.tree(random_parents(lq, 5, "rollout"), prefix=lk - lq)
    if name == "causal":
        return ma.causal()
    if name == "sliding":
        return ma.sliding_window(300)
    if name == "documents":  # the queries sit in the last document, which starts inside a key tile
        return ma.documents([lk // 2 + 37, lk - lk // 2 - 37])
    return ma.full()


@pytest.mark.parametrize("lq,group", [(64, 4), (32, 4), (33, 4), (64, 2), (20, 8), (64, 8)])
@pytest.mark.parametrize("mask_name", ["tree", "causal", "sliding", "documents", "full"])
def test_matches_reference(launches, lq, group, mask_name):
    # ragged row blocks (33 x 4 = 132 packed rows: a second block of 4), GQA 2-8, odd key count
    lk, hkv = 4133, 2
    mask = _mask(mask_name, lq, lk).to(DEV)
    q, k, v = rand_qkv(3, hkv * group, hkv, lq, lk, 128, torch.bfloat16, DEV, seed=lq + group)
    out, lse = ma.attention(q, k, v, mask, return_lse=True, q_offset=lk - lq)
    assert launches, "the Hopper split-KV kernel did not run"
    check_forward(q, k, v, mask, out=out, lse=lse, q_offset=lk - lq)


@pytest.mark.parametrize("d,dtype", [(128, torch.float16), (72, torch.bfloat16), (96, torch.float16)])
def test_head_dims_dtypes_and_strides(launches, d, dtype):
    # (B, L, H, D) storage viewed as (B, H, L, D): q's heads and rows do not merge without a copy
    lq, lk, hq, hkv = 64, 3001, 8, 2
    base = torch.randn(2, lk, hq + 2 * hkv, d, device=DEV, dtype=dtype)
    q = base[:, -lq:, :hq].transpose(1, 2)
    k, v = base[:, :, hq:hq + hkv].transpose(1, 2), base[:, :, hq + hkv:].transpose(1, 2)
    mask = ma.tree(random_parents(lq, 2, "bfs"), prefix=lk - lq).to(DEV)
    out, lse = ma.attention(q, k, v, mask, return_lse=True, q_offset=lk - lq)
    assert launches
    check_forward(q, k, v, mask, out=out, lse=lse, q_offset=lk - lq)


def test_split_counts_and_batch_dependent_maps(launches):
    # per-batch maps (padding differs by batch row: map rows per batch), from 1 to many splits
    lq, group, hkv = 64, 4, 2
    for b, lk in ((1, 200), (1, 20000), (5, 7777)):
        valid = torch.ones(b, lk, dtype=torch.bool)
        for i in range(b):
            valid[i, : 100 * i] = False  # left padding of 100 * i keys
        mask = (ma.padding(valid) & ma.causal()).to(DEV)
        q, k, v = rand_qkv(b, hkv * group, hkv, lq, lk, 128, torch.bfloat16, DEV, seed=b)
        out, lse = ma.attention(q, k, v, mask, return_lse=True, q_offset=lk - lq)
        check_forward(q, k, v, mask, out=out, lse=lse, q_offset=lk - lq)
    assert len(launches) == 3 and max(launches) > 1


def test_fully_masked_rows_and_masked_nan_values(launches):
    # a static cache of 6000 slots, 5000 written (the rest NaN); query rows 0..9 see nothing
    lq, lk, group, hkv = 64, 6000, 4, 2
    q, k, v = rand_qkv(2, hkv * group, hkv, lq, lk, 128, torch.bfloat16, DEV)
    written = 5000
    live = torch.ones(lk, dtype=torch.bool)  # query_mask takes absolute positions
    live[written - lq:written - lq + 10] = False
    mask = (ma.causal() & ma.query_mask(live)).to(DEV)
    kn, vn = k.clone(), v.clone()
    kn[:, :, written:] = float("nan")
    vn[:, :, written:] = float("nan")
    out, lse = ma.attention(q, kn, vn, mask, return_lse=True, q_offset=written - lq)
    assert launches
    check_forward(q, k, v, mask, out=out, lse=lse, q_offset=written - lq)
    assert bool((out[:, :, :10] == 0).all()) and bool((lse[:, :, :10] == float("-inf")).all())


def test_nan_value_some_rows_see(launches):
    # a NaN in V inside the tree region that only some tree nodes see (their outputs are not
    # specified): every other row exact
    lq, lk, group, hkv = 64, 3000, 4, 2
    q, k, v = rand_qkv(1, hkv * group, hkv, lq, lk, 128, torch.bfloat16, DEV, seed=4)
    mask = ma.tree(random_parents(lq, 3, "rollout"), prefix=lk - lq).to(DEV)
    node = 20
    vn = v.clone()
    vn[:, :, lk - lq + node] = float("nan")
    out, lse = ma.attention(q, k, vn, mask, return_lse=True, q_offset=lk - lq)
    assert launches
    sees = mask.materialize(lq, lk, q_offset=lk - lq, device=DEV)[0, 0, :, lk - lq + node]  # (Lq,)
    ref_o, ref_l = reference.attention(q, k, v, mask, q_offset=lk - lq)
    low_o, low_l = reference.attention_low_precision(q, k, v, mask, q_offset=lk - lq)
    check_close("out", out[:, :, ~sees], ref_o[:, :, ~sees], low_o[:, :, ~sees], torch.bfloat16, 2)
    check_close("lse", lse[:, :, ~sees], ref_l[:, :, ~sees], low_l[:, :, ~sees], torch.bfloat16, 2)


def test_cuda_graph_capture_of_tree_verification(launches):
    lq, lk, group, hkv = 64, 8192, 4, 2
    q, k, v = rand_qkv(2, hkv * group, hkv, lq, lk, 128, torch.bfloat16, DEV)
    tree = ma.tree(random_parents(lq, 7, "rollout"), prefix=lk - lq).to(DEV)
    step = lambda: ma.attention(q, k, v, ma.compile_mask(tree, lq, lk, device=DEV), return_lse=True)  # noqa: E731
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture
        step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out, lse = step()
    q.copy_(torch.randn_like(q))
    graph.replay()
    torch.cuda.synchronize()
    ref_out, ref_lse = step()
    assert torch.equal(out, ref_out) and torch.equal(lse, ref_lse)
    assert launches
    check_forward(q, k, v, tree, out=out, lse=lse)

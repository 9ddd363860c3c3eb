"""``attention(q, k, v)`` without a mask on short query blocks (``kernels/unmasked_decode.py``):
against the float64 reference on every path, without a map, and on the GPU its launch replayed
at every key count of a growing cache, without host syncs, inside a CUDA graph."""
from contextlib import nullcontext
from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
import maskattn.api as api
from attention_checks import check_backward, check_forward, kernel_grads, rand_qkv
from maskattn.kernels import op, unmasked_decode

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_triton = pytest.mark.skipif(not (torch.cuda.is_available() or op.interpreting()),
                                  reason="the kernels run on CUDA or under TRITON_INTERPRET=1")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _no_map(*args, **kwargs):
    raise AssertionError("an unmasked short query block compiled a map")


@needs_triton
@settings(max_examples=30)
@given(batch=st.integers(1, 2), kv_heads=st.integers(1, 2), group=st.sampled_from([1, 2, 4, 8]),
       lq=st.integers(1, 64), lk=st.integers(1, 300), d=st.sampled_from([16, 40, 64, 128]),
       dtype=st.sampled_from([torch.float32, torch.bfloat16, torch.float16]),
       softcap=st.sampled_from([None, 4.0]), scale=st.sampled_from([None, 0.3, -0.2]), seed=st.integers(0, 99))
def test_matches_reference(batch, kv_heads, group, lq, lk, d, dtype, softcap, scale, seed):
    q, k, v = rand_qkv(batch, kv_heads * group, kv_heads, lq, lk, d, dtype, DEVICE, seed=seed)
    no_map = mock.patch.object(api, "_block_map", _no_map) if unmasked_decode.applies(q, k) else nullcontext()
    with no_map:
        out, lse = ma.attention(q, k, v, scale=scale, softcap=softcap, return_lse=True)
        check_forward(q, k, v, None, out=out, lse=lse, scale=scale, softcap=softcap)
        if DEVICE == "cuda":  # the next call replays the recorded launch: the same result
            again, lse2 = ma.attention(q, k, v, scale=scale, softcap=softcap, return_lse=True)
            assert torch.equal(again, out) and torch.equal(lse2, lse)


def test_applies_to_short_blocks_only(path_device):
    q, k, _ = rand_qkv(2, 8, 2, 64, 100, 64, torch.float32, path_device)
    assert unmasked_decode.applies(q[:, :, :1], k)
    assert not unmasked_decode.applies(torch.cat([q, q[:, :, :1]], 2), k)  # 65 rows: the training kernel's tiles
    # 128 packed rows per KV head with >= 32 units: the Hopper packed kernel's work (through a map)
    wide_q = q.new_zeros(16, 8, 32, 64)
    assert not unmasked_decode.applies(wide_q, k.new_zeros(16, 2, 100, 64))


def test_gradients_take_the_map_path(path_device):
    q, k, v = rand_qkv(1, 4, 2, 3, 70, 32, torch.float32, path_device, requires_grad=True)
    assert op.unmasked_attention(q, k, v, 0.2, None) is None  # autograd: the map path, differentiable
    grad_out = torch.randn_like(q)
    _, _, grads = kernel_grads(q, k, v, None, grad_out)
    check_backward(q, k, v, None, grads=grads, grad_out=grad_out)


@pytest.mark.parametrize("mask_name,q_offset,lq,mapless", [
    ("none", 38, 2, True),  # no mask: every key at any offset
    ("causal", None, 1, True),  # one new token at the default offset sees the whole cache
    ("causal", 39, 1, True),
    ("causal", 30, 1, True),  # the keys before 31
    ("causal", None, 2, True),  # causal rows: the first of two new tokens does not see the second
    ("causal", 20, 5, True),  # causal rows ending at key 25
    ("causal", 37, 4, False),  # the last row would see past the last key: a map
    ("wide window", None, 3, True),  # sliding_window(100) on 40 keys: causal rows
    ("window", None, 1, True),  # causal & sliding_window(100) on 40 keys
    ("window", None, 3, True),  # causal rows: the AND of two such bands
    ("narrow window", None, 1, False),  # sliding_window(20): keys 0..18 hidden
    ("narrow window", None, 3, False),
    ("full or padding", None, 1, False),  # allows every pair, but holds tensors (checked on the map path)
    ("not", None, 1, False),
])
def test_which_masks_need_no_map(path_device, monkeypatch, mask_name, q_offset, lq, mapless):
    q, k, v = rand_qkv(2, 2, 1, lq, 40, 16, torch.float32, path_device)
    masks = {"none": None, "causal": ma.causal(), "window": ma.causal() & ma.sliding_window(100),
             "wide window": ma.sliding_window(100),
             "narrow window": ma.sliding_window(20), "not": ~~ma.causal(),
             "full or padding": ma.full() | ma.padding(torch.arange(40, device=path_device)[None] % 3 > 0)}
    mask = masks[mask_name]
    calls = []
    original = api._block_map
    monkeypatch.setattr(api, "_block_map", lambda *a: calls.append(1) or original(*a))
    out, lse = ma.attention(q, k, v, mask, q_offset=q_offset, return_lse=True)
    check_forward(q, k, v, mask, out=out, lse=lse, q_offset=q_offset)
    triton_path = path_device == "cuda" or op.interpreting()
    assert bool(calls) == (not mapless or not triton_path)


@needs_triton
@pytest.mark.parametrize("side", ["start", "end"])
@settings(max_examples=25)
@given(batch=st.integers(1, 3), group=st.sampled_from([1, 4]), lq=st.integers(1, 16), lk=st.integers(1, 300),
       dtype=st.sampled_from([torch.float32, torch.bfloat16]), seed=st.integers(0, 99), data=st.data())
def test_rows_cut_at_a_start_or_an_end_match_the_padding_mask(side, batch, group, lq, lk, dtype, seed, data):
    # batch row b sees keys [kv_start[b], Lk) (left padding) or [0, kv_end[b]) (a static cache's
    # unwritten slots after them); NaN / Inf in the other keys never leaks, and a row without
    # keys gets out 0 and lse -inf
    cuts = data.draw(st.lists(st.integers(0, lk), min_size=batch, max_size=batch))
    q, k, v = rand_qkv(batch, 2 * group, 2, lq, lk, 32, dtype, DEVICE, seed=seed)
    keys, cut = torch.arange(lk, device=DEVICE)[None], torch.tensor(cuts, device=DEVICE)[:, None]
    valid = keys >= cut if side == "start" else keys < cut
    k = k.masked_fill(~valid[:, None, :, None], float("nan"))
    v = v.masked_fill(~valid[:, None, :, None], float("inf"))
    bound = torch.tensor(cuts, dtype=torch.int32, device=DEVICE)
    with mock.patch.object(api, "_block_map", _no_map):
        out = ma.api.attention_between(q, k, v, **{f"kv_{side}": bound}, softcap=3.0)
        again, lse = op.unmasked_attention(q, k, v, 32 ** -0.5, 3.0, **{f"kv_{side}": bound})
    check_forward(q, k, v, ma.padding(valid), out=out, lse=lse, softcap=3.0)
    assert torch.equal(again, out)


@needs_triton
@settings(max_examples=30)
@given(batch=st.integers(1, 3), group=st.sampled_from([1, 2, 4, 8]), lq=st.integers(1, 64), lk=st.integers(1, 300),
       d=st.sampled_from([16, 64, 128]), dtype=st.sampled_from([torch.float32, torch.bfloat16]),
       softcap=st.sampled_from([None, 2.0]), seed=st.integers(0, 99), data=st.data())
def test_causal_rows_match_the_reference(batch, group, lq, lk, d, dtype, softcap, seed, data):
    # causal() on a short block (decoding several tokens) at any offset whose last row ends at or
    # before the last key: no map, row r sees the keys [0, q_offset + r + 1); NaN / Inf in the
    # keys after the last row's end never leak
    lq = min(lq, lk)
    q_offset = data.draw(st.integers(0, lk - lq))
    q, k, v = rand_qkv(batch, 2 * group, 2, lq, lk, d, dtype, DEVICE, seed=seed)
    k[:, :, q_offset + lq:] = float("nan")
    v[:, :, q_offset + lq:] = float("inf")
    no_map = mock.patch.object(api, "_block_map", _no_map) if unmasked_decode.applies(q, k) else nullcontext()
    with no_map:
        out, lse = ma.attention(q, k, v, ma.causal(), q_offset=q_offset, softcap=softcap, return_lse=True)
    check_forward(q, k, v, ma.causal(), out=out, lse=lse, q_offset=q_offset, softcap=softcap)


@needs_triton
@settings(max_examples=25)
@given(batch=st.integers(1, 3), group=st.sampled_from([1, 4]), lq=st.integers(1, 16), lk=st.integers(1, 200),
       dtype=st.sampled_from([torch.float32, torch.bfloat16]), seed=st.integers(0, 99), data=st.data())
def test_causal_rows_between_a_start_and_an_end(batch, group, lq, lk, dtype, seed, data):
    # the plug-in's multi-token steps: batch row b's query row r sees the keys
    # [kv_start[b], kv_end[b] - (lq - 1 - r)) (left padding before, a static cache's unwritten
    # slots after), as causal() & padding at the per-row offset kv_end[b] - lq; a row without
    # keys gets out 0 and lse -inf
    ends = data.draw(st.lists(st.integers(0, lk), min_size=batch, max_size=batch))  # rows before key 0: no keys
    starts = [data.draw(st.integers(0, e)) for e in ends]
    q, k, v = rand_qkv(batch, 2 * group, 2, lq, lk, 32, dtype, DEVICE, seed=seed)
    keys = torch.arange(lk, device=DEVICE)[None]
    start, end = (torch.tensor(x, dtype=torch.int32, device=DEVICE) for x in (starts, ends))
    outside = (keys < start[:, None].long()) | (keys >= end[:, None].long())
    k = k.masked_fill(outside[:, None, :, None], float("nan"))
    v = v.masked_fill(outside[:, None, :, None], float("inf"))
    with mock.patch.object(api, "_block_map", _no_map):
        out, lse = op.unmasked_attention(q, k, v, 32 ** -0.5, None, kv_start=start, kv_end=end, causal=True)
        public = ma.api.attention_between(q, k, v, kv_start=start, kv_end=end, causal=True)
    mask = ma.causal() & ma.padding(keys >= start[:, None].long())
    check_forward(q, k, v, mask, out=out, lse=lse, q_offset=end.long() - lq)
    assert torch.equal(public, out)


@pytest.mark.parametrize("name", ["kv_start", "kv_end"])
def test_kv_start_and_end_are_checked(path_device, name):
    q, k, v = rand_qkv(2, 4, 2, 1, 50, 16, torch.float32, path_device)
    entry = ma.api.attention_after_starts if name == "kv_start" else (
        lambda q, k, v, ends: ma.api.attention_between(q, k, v, kv_end=ends))
    for bad in (torch.zeros(3, dtype=torch.int32), torch.zeros(2, dtype=torch.int64), [0, 1]):
        with pytest.raises(ValueError, match=name):
            entry(q, k, v, bad)
    long_q, long_k, long_v = rand_qkv(2, 4, 2, 65, 70, 16, torch.float32, path_device)  # 65 rows: not a short block
    assert entry(long_q, long_k, long_v, torch.zeros(2, dtype=torch.int32, device=path_device)) is None


@pytest.mark.parametrize("mask_name,lq,group", [("none", 5, 2), ("causal", 1, 4), ("causal", 4, 2)])
def test_compiled_call_has_no_graph_break(path_device, mask_name, lq, group):
    """Inside torch.compile an unmasked short block is one custom op (a map would be compiled on the
    host, a graph break): ``fullgraph=True`` traces it, plain and after left padding, and the
    results match the float64 reference."""
    q, k, v = rand_qkv(2, 2 * group, 2, lq, 90, 32, torch.float32, path_device)
    mask = ma.causal() if mask_name == "causal" else None
    torch._dynamo.reset()
    step = torch.compile(lambda q, k, v: ma.attention(q, k, v, mask, return_lse=True), fullgraph=True,
                         backend="aot_eager")
    out, lse = step(q, k, v)
    check_forward(q, k, v, mask, out=out, lse=lse)
    starts = torch.tensor([0, 11], dtype=torch.int32, device=path_device)
    padded = ma.padding(torch.arange(90, device=path_device)[None, :] >= starts[:, None].long())
    after = torch.compile(lambda q, k, v, s: op.unmasked_attention(q, k, v, 32 ** -0.5, None, kv_start=s),
                          fullgraph=True, backend="aot_eager")
    out, lse = after(q, k, v, starts)
    check_forward(q, k, v, padded, out=out, lse=lse)
    public = torch.compile(lambda q, k, v, s: api.attention_after_starts(q, k, v, s), fullgraph=True,
                           backend="aot_eager")
    assert torch.equal(public(q, k, v, starts), out)
    ends = torch.tensor([90, 33], dtype=torch.int32, device=path_device)  # a static cache's written keys
    before = torch.compile(lambda q, k, v, e: op.unmasked_attention(q, k, v, 32 ** -0.5, None, kv_end=e),
                           fullgraph=True, backend="aot_eager")
    out, lse = before(q, k, v, ends)
    check_forward(q, k, v, ma.padding(torch.arange(90, device=path_device)[None, :] < ends[:, None].long()),
                  out=out, lse=lse)


def test_unmasked_op_registration(path_device):
    """The custom op's fake (meta) function and schema agree with its real one."""
    q, k, v = rand_qkv(1, 4, 2, 3, 40, 16, torch.float32, path_device)
    starts, ends = (torch.tensor([n], dtype=torch.int32, device=path_device) for n in (5, 31))
    for kv_start, kv_end in ((None, None), (starts, None), (None, ends), (starts, ends)):
        for causal in (False, True):
            torch.library.opcheck(op.unmasked_forward_op, (q, k, v, kv_start, kv_end, 0.25, None, causal),
                                  test_utils=("test_schema", "test_faketensor"))


# ---- GPU: replays ---------------------------------------------------------------------------------
@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("lq,group,causal", [(1, 4, False), (4, 4, False), (16, 1, False), (2, 8, False),
                                             (4, 4, True), (16, 1, True)])
def test_growing_cache_replays_one_launch(lq, group, causal, monkeypatch):
    # without a mask, or causal() rows (decoding several tokens), no map at any step
    monkeypatch.setattr(api, "_block_map", _no_map)
    unmasked_decode._PLANS.clear()
    mask = ma.causal() if causal else None
    q, k, v = rand_qkv(2, 2 * group, 2, lq, 900, 128, torch.bfloat16, "cuda")
    for step in range(40):  # a dynamic cache: a new, longer K / V each step (key counts 900 .. 939)
        k = torch.cat([k, torch.randn_like(k[:, :, :1])], 2)
        v = torch.cat([v, torch.randn_like(v[:, :, :1])], 2)
        out, lse = ma.attention(q, k, v, mask, return_lse=True)
        if step % 13 == 0:
            check_forward(q, k, v, mask, out=out, lse=lse)
            # Lk % 16 == 0 or not, strides alike: at most two recorded launches served the steps so far
            assert 1 <= len(unmasked_decode._PLANS) <= 2
            unmasked_decode._PLANS.clear()  # a fresh launch gives the replay's result bit for bit
            fresh, fresh_lse = ma.attention(q, k, v, mask, return_lse=True)
            assert torch.equal(fresh, out) and torch.equal(fresh_lse, lse)


@pytest.mark.gpu
@needs_gpu
def test_strided_cache_slices_replay_correctly():
    # K / V as slices of a preallocated cache: strides stay, the key count changes; then a
    # contiguous cache of the same key count (other strides, another plan)
    cache = rand_qkv(2, 8, 2, 1, 3000, 64, torch.float16, "cuda")[1:]
    q = rand_qkv(2, 8, 2, 1, 8, 64, torch.float16, "cuda", seed=5)[0]
    for lk in (1000, 1001, 1016, 2999):
        k, v = cache[0][:, :, :lk], cache[1][:, :, :lk]
        out, lse = ma.attention(q, k, v, return_lse=True)
        check_forward(q, k, v, None, out=out, lse=lse)
        out_c, lse_c = ma.attention(q, k.contiguous(), v.contiguous(), return_lse=True)
        check_forward(q, k, v, None, out=out_c, lse=lse_c)


@pytest.mark.gpu
@needs_gpu
def test_no_host_sync_and_cuda_graph_capture():
    q, k, v = rand_qkv(4, 16, 4, 1, 5000, 128, torch.bfloat16, "cuda")
    ma.attention(q, k, v)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # a host sync would raise
    try:
        ma.attention(q, k, v)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture
        ma.attention(q, k, v)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured, captured_lse = ma.attention(q, k, v, return_lse=True)
    for seed in (1, 2):
        nq, nk, nv = rand_qkv(4, 16, 4, 1, 5000, 128, torch.bfloat16, "cuda", seed=seed)
        q.copy_(nq), k.copy_(nk), v.copy_(nv)
        graph.replay()
        ref, ref_lse = ma.attention(nq, nk, nv, return_lse=True)
        assert torch.equal(captured, ref) and torch.equal(captured_lse, ref_lse)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("with_map", [False, True])
def test_bad_inputs_after_a_recorded_launch_raise(with_map):
    # a replay skips attention()'s checks only for inputs laid out like the recorded call's
    q, k, v = rand_qkv(1, 4, 2, 1, 300, 64, torch.bfloat16, "cuda")
    mask = ma.compile_mask(ma.causal(), 1, 300, device="cuda") if with_map else None
    ma.attention(q, k, v, mask)
    ma.attention(q, k, v, mask)  # recorded, then replayed
    with pytest.raises(ValueError, match="one device"):
        ma.attention(q, k.cpu(), v, mask)
    with pytest.raises(ValueError, match="4 dims"):
        ma.attention(q, k[0], v, mask)
    with pytest.raises(ValueError, match="same shape"):
        ma.attention(q, k, v[:, :, :299], mask)


@pytest.mark.gpu
@needs_gpu
def test_left_padded_growing_cache_replays():
    # a left-padded batch decoding onto a dynamic cache (the plug-in's path): the rows' first keys
    # stay, the key count grows; two recorded launches at most, results as the padding mask's
    unmasked_decode._PLANS.clear()
    q, k, v = rand_qkv(3, 8, 2, 1, 700, 128, torch.bfloat16, "cuda")
    kv_start = torch.tensor([0, 5, 300], dtype=torch.int32, device="cuda")
    for step in range(20):
        k = torch.cat([k, torch.randn_like(k[:, :, :1])], 2)
        v = torch.cat([v, torch.randn_like(v[:, :, :1])], 2)
        out = ma.api.attention_after_starts(q, k, v, kv_start)
        if step % 7 == 0:
            valid = torch.arange(k.shape[2], device="cuda")[None] >= kv_start[:, None].long()
            ref_out, ref_lse = ma.attention(q, k, v, ma.padding(valid), return_lse=True)
            check_forward(q, k, v, ma.padding(valid), out=out, lse=ref_lse)
    assert 1 <= len(unmasked_decode._PLANS) <= 2

"""GPU: a forward with a precompiled BlockMap does no host synchronisation and can be captured
in a CUDA graph (decode steps), directly and through torch.compile's "reduce-overhead" mode."""
import pytest
import torch

import maskattn as ma
from attention_checks import rand_qkv

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
DEV = "cuda"


def _decode_inputs(seed=0, lq=4, lk=4096):
    return rand_qkv(8, 32, 8, lq, lk, 128, torch.bfloat16, DEV, seed=seed)


def test_forward_with_block_map_does_not_sync():
    q, k, v = _decode_inputs()
    bm = ma.compile_mask(ma.causal() & ma.sliding_window(1023), 4, 4096, device=DEV)
    ma.attention(q, k, v, bm)  # warm-up: Triton compiles the kernel on its first launch
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for det in (None, True, False):
            ma.attention(q, k, v, bm, return_lse=True, deterministic=det)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_cuda_graph_capture_of_decode_steps():
    q, k, v = _decode_inputs()
    bm = ma.compile_mask(ma.causal(), 4, 4096, device=DEV)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture
        ma.attention(q, k, v, bm)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out, lse = ma.attention(q, k, v, bm, return_lse=True)
    for seed in (1, 2):  # new data in the static buffers, replay, compare with eager
        nq, nk, nv = _decode_inputs(seed)
        q.copy_(nq), k.copy_(nk), v.copy_(nv)
        graph.replay()
        ref_out, ref_lse = ma.attention(nq, nk, nv, bm, return_lse=True)
        assert torch.equal(out, ref_out) and torch.equal(lse, ref_lse)


def test_reduce_overhead_compile_matches_eager():
    torch._dynamo.reset()
    q, k, v = _decode_inputs(lq=1)
    bm = ma.compile_mask(ma.causal(), 1, 4096, device=DEV)

    def step(q, k, v):
        return ma.attention(q * 1.0, k, v, bm) + 0.0

    compiled = torch.compile(step, mode="reduce-overhead", fullgraph=True)
    for seed in range(3):
        q, k, v = _decode_inputs(seed, lq=1)
        torch.testing.assert_close(compiled(q, k, v), step(q, k, v), rtol=0, atol=1e-2)

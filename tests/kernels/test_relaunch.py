"""Replayed decode launches (``relaunch.Relaunch`` through ``decode._DecodePlan``): a decode call
like an earlier one on the same map replays its launch with the new tensors. Each replay must
give exactly what a fresh launch gives (GPU only: replays need a compiled kernel)."""
import pytest
import torch

import maskattn as ma
from attention_checks import check_forward, rand_qkv
from helpers import random_parents
from maskattn.kernels import config, decode, flash_decode_sm90, flash_fwd_sm90, relaunch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not (torch.cuda.is_available() and relaunch.available()),
                                                  reason="needs a CUDA GPU and a Triton release with replays")]
DEV = "cuda"


@pytest.fixture
def launches(monkeypatch):
    """Counts the decode kernel's launches that are not replays of a plan: normal launches and
    recorded ones (with Triton's binding, or through an earlier map's compiled kernel). Starts
    without compiled kernels from other tests."""
    calls = []

    def spy(real):
        def counted(kernel, *args, **kwargs):
            calls.append(kernel)
            return real(kernel, *args, **kwargs)
        return counted

    monkeypatch.setattr(decode, "launch", spy(decode.launch))
    monkeypatch.setattr(relaunch, "launch_recorded", spy(relaunch.launch_recorded))
    monkeypatch.setattr(relaunch, "_COMPILED", {})
    return calls


def _fresh(bm):
    """The same map without its recorded plans: what a first call computes."""
    return ma.BlockMap(**{f: getattr(bm, f) for f in bm.__dataclass_fields__})


def _mask(name, lq, lk):
    if name == "tree":
        return ma.tree(random_parents(lq, 5, "rollout"), prefix=lk - lq)
    return {"causal": ma.causal(), "sliding": ma.sliding_window(700), "full": ma.full()}[name]


@pytest.mark.parametrize("b,hq,hkv,lq,lk,name", [
    (1, 16, 8, 1, 8192, "causal"),   # a decode step, fused merge
    (8, 32, 8, 4, 5001, "sliding"),  # 4 tokens, odd key count
    (2, 8, 2, 64, 3000, "tree"),     # tree verification on the portable kernel: the merge launch
    (3, 4, 4, 7, 777, "full"),       # no GQA
])
def test_replays_equal_fresh_launches(launches, b, hq, hkv, lq, lk, name):
    bm = ma.compile_mask(_mask(name, lq, lk).to(DEV), lq, lk, device=DEV, block_q=max(16, 1 << (lq - 1).bit_length()))
    first = rand_qkv(b, hq, hkv, lq, lk, 128, torch.bfloat16, DEV, seed=1)
    ma.attention(*first, bm)
    assert len(launches) == 1 and len(bm._decode_plans) == 1
    for seed in range(2, 6):  # replays keep using the recorded counters: each must be reset
        q, k, v = rand_qkv(b, hq, hkv, lq, lk, 128, torch.bfloat16, DEV, seed=seed)
        before = len(launches)
        out, lse = ma.attention(q, k, v, bm, return_lse=True)
        assert len(launches) == before, "the call was launched again instead of replayed"
        ref_out, ref_lse = ma.attention(q, k, v, _fresh(bm), return_lse=True)
        assert torch.equal(out, ref_out) and torch.equal(lse, ref_lse)
        check_forward(q, k, v, _mask(name, lq, lk).to(DEV), out=out, lse=lse)


@pytest.mark.skipif(not (torch.cuda.is_available() and flash_fwd_sm90.HAVE_GLUON
                          and torch.cuda.get_device_capability() == (9, 0)), reason="needs an sm_90 GPU and Gluon")
@pytest.mark.parametrize("b,hq,hkv,lq,lk", [(2, 8, 2, 64, 5000), (4, 32, 8, 64, 32768)])
def test_hopper_split_kv_replays_equal_fresh_launches(monkeypatch, b, hq, hkv, lq, lk):
    # tree verification on the Hopper kernel (flash_decode_sm90): its packed launch and the merge
    # launch are replayed together; the small case takes that kernel too (no minimum of units)
    monkeypatch.setattr(flash_decode_sm90, "MIN_UNITS", 1)
    calls = []
    real = flash_fwd_sm90.launch_sm90
    monkeypatch.setattr(flash_fwd_sm90, "launch_sm90", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    bm = ma.compile_mask(_mask("tree", lq, lk).to(DEV), lq, lk, device=DEV)
    ma.attention(*rand_qkv(b, hq, hkv, lq, lk, 128, torch.bfloat16, DEV, seed=1), bm)
    assert len(calls) == 1 and len(bm._decode_plans) == 1
    for seed in range(2, 5):
        q, k, v = rand_qkv(b, hq, hkv, lq, lk, 128, torch.bfloat16, DEV, seed=seed)
        out, lse = ma.attention(q, k, v, bm, return_lse=True)
        assert len(calls) == 1, "the call was launched again instead of replayed"
        ref_out, ref_lse = ma.attention(q, k, v, _fresh(bm), return_lse=True)
        assert len(calls) == 2 and torch.equal(out, ref_out) and torch.equal(lse, ref_lse)
        calls.pop()
        if lk <= 5000:  # the float64 reference at 32k keys is slow; the replay equals the fresh launch there
            check_forward(q, k, v, _mask("tree", lq, lk).to(DEV), out=out, lse=lse)


def test_new_layouts_launch_again(launches):
    # another stride, another alignment of q, another scale: other specialisations, other plans
    lk = 2048
    bm = ma.compile_mask(ma.causal(), 1, lk, device=DEV, block_q=16)
    q, k, v = rand_qkv(2, 8, 4, 1, lk, 128, torch.float16, DEV, seed=0)
    ma.attention(q, k, v, bm)
    q_wide = torch.zeros(2, 8, 1, 136, dtype=q.dtype, device=DEV)[..., 8:]  # 16-byte aligned, other stride
    q_wide.copy_(q)
    q_odd = torch.zeros(2 * 8 * 128 + 4, dtype=q.dtype, device=DEV)[4:].view(2, 8, 1, 128)  # 8-byte aligned
    q_odd.copy_(q)
    ref = ma.attention(q, k, v, _fresh(bm))
    ref_half = ma.attention(q, k, v, _fresh(bm), scale=0.5)
    before = len(launches)
    for qq in (q_wide, q_odd):
        assert torch.equal(ma.attention(qq, k, v, bm), ref)
        assert torch.equal(ma.attention(qq, k, v, bm), ref)  # now a replay of its own plan
    assert torch.equal(ma.attention(q, k, v, bm, scale=0.5), ref_half)
    assert torch.equal(ma.attention(q, k, v, bm), ref)  # the first plan still there
    assert len(launches) - before == 3 and len(bm._decode_plans) == 4


def test_other_streams_and_cuda_graphs_keep_their_own_buffers(launches):
    lk = 4096
    bm = ma.compile_mask(ma.causal(), 4, lk, device=DEV, block_q=16)
    inputs = [rand_qkv(4, 16, 4, 4, lk, 128, torch.bfloat16, DEV, seed=s) for s in range(3)]
    refs = [ma.attention(*x, _fresh(bm)) for x in inputs]
    ma.attention(*inputs[0], bm)  # eager plan on the current stream
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        side_out = ma.attention(*inputs[1], bm)  # a plan of its own (own partials and counters)
    torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(side_out, refs[1]) and len(bm._decode_plans) == 2
    static = [t.clone() for t in inputs[0]]
    graph = torch.cuda.CUDAGraph()
    capture_stream = torch.cuda.Stream()
    with torch.cuda.stream(capture_stream):
        ma.attention(*static, bm)  # warm-up on the capture stream records a plan there...
    torch.cuda.current_stream().wait_stream(capture_stream)
    with torch.cuda.graph(graph, stream=capture_stream):
        graph_out = ma.attention(*static, bm)  # ...which the capture does not use
    for i in (2, 1, 0):
        for t, src in zip(static, inputs[i]):
            t.copy_(src)
        graph.replay()
        eager = ma.attention(*inputs[(i + 1) % 3], bm)  # eager replays interleaved with graph replays
        torch.cuda.synchronize()
        assert torch.equal(graph_out, refs[i]) and torch.equal(eager, refs[(i + 1) % 3])


def test_tuning_overrides_are_not_replayed(launches, monkeypatch):
    bm = ma.compile_mask(ma.causal(), 1, 1024, device=DEV, block_q=16)
    q, k, v = rand_qkv(1, 8, 8, 1, 1024, 128, torch.bfloat16, DEV, seed=0)
    monkeypatch.setitem(config.OVERRIDES, "decode", dict(BLOCK_M=16, BLOCK_N=64, num_warps=4, num_stages=2))
    ma.attention(q, k, v, bm)
    ma.attention(q, k, v, bm)
    assert len(launches) == 2 and not bm.__dict__.get("_decode_plans")


def test_attention_replays_without_the_full_path_and_still_checks(monkeypatch):
    # ``attention`` with a map holding a plan replays it before its own checks (op.replay_decode);
    # what that skips must not change results or let bad arguments through
    lk = 3000
    bm = ma.compile_mask(ma.causal(), 1, lk, device=DEV, block_q=16)
    q, k, v = rand_qkv(2, 16, 8, 1, lk, 128, torch.bfloat16, DEV, seed=3)
    ma.attention(q, k, v, bm, scale=1.0)
    ref_out, ref_lse = ma.attention(q, k, v, _fresh(bm), scale=1.0, return_lse=True)
    full_path = []
    real = ma.api._check_tensors
    monkeypatch.setattr(ma.api, "_check_tensors", lambda *a: full_path.append(1) or real(*a))
    out = ma.attention(q, k, v, bm, scale=1.0)
    out2, lse = ma.attention(q, k, v, bm, scale=1.0, return_lse=True)
    assert not full_path and torch.equal(out, ref_out) and torch.equal(out2, ref_out) and torch.equal(lse, ref_lse)
    assert out.data_ptr() != out2.data_ptr()  # every call gets an output of its own
    with pytest.raises(TypeError, match="scale"):
        ma.attention(q, k, v, bm, scale=True)  # == 1.0, but not a float
    with pytest.raises(TypeError, match="deterministic"):
        ma.attention(q, k, v, bm, scale=1.0, deterministic="yes")
    with pytest.raises(TypeError, match="softcap"):
        ma.attention(q, k, v, bm, scale=1.0, softcap=True)
    with pytest.raises(ValueError, match="q_offset"):
        ma.attention(q, k, v, bm, scale=1.0, q_offset=5)
    qg = q.clone().requires_grad_()
    out_g = ma.attention(qg, k, v, bm, scale=1.0)  # autograd: the full path, differentiable
    assert out_g.grad_fn is not None and full_path and torch.equal(out_g.detach(), ref_out)
    out_g.float().sum().backward()
    assert qg.grad is not None and torch.isfinite(qg.grad).all()


def test_later_steps_maps_launch_the_compiled_kernel_of_an_earlier_map(monkeypatch):
    # each decode step compiles a new map; its first call runs the compiled kernel of an earlier
    # map's launch when Triton would specialise the arguments the same way (here: the key count
    # a multiple of 16 or not), and must give exactly what Triton's own launch gives
    jit = []
    real = relaunch.launch
    monkeypatch.setattr(relaunch, "launch", lambda kernel, *a, **kw: jit.append(kernel) or real(kernel, *a, **kw))
    monkeypatch.setattr(relaunch, "_COMPILED", {})
    results, counts = {}, []
    for lk in (8193, 8194, 8207, 8208, 8209, 8224):
        bm = ma.compile_mask(ma.causal(), 1, lk, device=DEV, block_q=16)
        q, k, v = rand_qkv(2, 16, 8, 1, lk, 128, torch.bfloat16, DEV, seed=lk)
        results[lk] = (q, k, v, *ma.attention(q, k, v, bm, return_lse=True))
        assert len(bm._decode_plans) == 1
        again = ma.attention(q, k, v, bm, return_lse=True)  # the plan's replay
        assert torch.equal(again[0], results[lk][3]) and torch.equal(again[1], results[lk][4])
        counts.append(len(jit))
    assert counts == [1, 1, 1, 2, 2, 2]
    monkeypatch.setattr(relaunch, "_COMPILED", {})
    for lk, (q, k, v, out, lse) in results.items():
        bm = ma.compile_mask(ma.causal(), 1, lk, device=DEV, block_q=16)
        ref_out, ref_lse = ma.attention(q, k, v, bm, return_lse=True)  # Triton's own launch
        monkeypatch.setattr(relaunch, "_COMPILED", {})
        assert torch.equal(out, ref_out) and torch.equal(lse, ref_lse)
        check_forward(q, k, v, ma.causal().to(DEV), out=out, lse=lse)

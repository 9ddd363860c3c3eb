"""Host microseconds per decode call, layer by layer of maskattn's call path (B x 16/8 heads x 1 query
x 8k keys, D=128, bf16), against SDPA; plus a launch that skips Triton's runner (prototype)."""
import os, sys, time
import torch
import torch.nn.functional as F
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks.decode_host import per_call_us
from maskattn.kernels import decode as dec, op, forward as fwd
import maskattn.integrations.transformers as mt
from transformers import masking_utils as mu

print("GPU", torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
import triton; print("triton", triton.__version__)

def row(name, fn):
    try:
        h, w = per_call_us(fn, 500)
    except Exception as e:
        print(f"{name:48s} failed: {type(e).__name__}: {e}", flush=True)
        return
    print(f"{name:48s} host {h:7.1f} us  wall {w:7.1f} us", flush=True)

for B in (1, 8):
    kv = 8192
    q = torch.randn(B, 16, 1, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(B, 8, kv, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    bm = ma.compile_mask(ma.causal(), 1, kv, device="cuda", block_q=16)
    ma.attention(q, k, v, bm)
    plan = next(iter(bm.__dict__["_decode_plans"].values()))
    sc = 128 ** -0.5
    out = torch.empty(B, 16, 1, 128, device="cuda", dtype=torch.bfloat16)
    lse = torch.empty(B, 16, 1, device="cuda", dtype=torch.float32)
    split = plan._split
    print(f"--- B={B} kv={kv}: plan combine={plan._combine is not None}, split args={len(split._args)}")
    row("sdpa enable_gqa", lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True))
    row("sdpa + transpose.contiguous", lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True).transpose(1, 2).contiguous())
    row("ma.attention(BlockMap)", lambda: ma.attention(q, k, v, bm))
    row("op.masked_attention", lambda: op.masked_attention(q, k, v, bm, sc, None, False))
    row("op._forward", lambda: op._forward(q, k, v, bm, sc, None))
    row("forward.attention_forward", lambda: fwd.attention_forward(q, k, v, bm, sc, None))
    row("decode.decode_forward", lambda: dec.decode_forward(q, k, v, bm, sc, None))
    row("_plan_key", lambda: dec._plan_key(q, k, v, sc, None))
    row("plan(q, k, v)", lambda: plan(q, k, v))
    row("Relaunch split(q,k,v,out,lse)", lambda: split(q, k, v, out, lse))
    row("2x torch.empty", lambda: (torch.empty(B, 16, 1, 128, device="cuda", dtype=torch.bfloat16), torch.empty(B, 16, 1, device="cuda", dtype=torch.float32)))
    args = split._args
    row("runner(*args)", lambda: split._run(*args))
    # prototype: the launcher's C entry point directly (stream, scratch preallocated)
    ck = split._run.__closure__  # runner closes over self (CompiledKernel) and grid
    comp = [c.cell_contents for c in ck if hasattr(c.cell_contents, "function")][0]
    grid = [c.cell_contents for c in ck if isinstance(c.cell_contents, tuple)][0]
    L = comp.run
    print("  global scratch", L.global_scratch_size, "profile scratch", L.profile_scratch_size, "launch", L.launch)
    scratch = torch.empty(max(1, grid[0] * grid[1] * grid[2] * L.num_ctas * L.global_scratch_size), dtype=torch.int8, device="cuda") if L.global_scratch_size else None
    fn, pm = comp.function, comp.packed_metadata
    def direct():
        L.launch(grid[0], grid[1], grid[2], torch._C._cuda_getCurrentRawStream(0), fn, L.launch_cooperative_grid,
                 L.launch_pdl, scratch, None, pm, None, None, None, *args)
    direct(); torch.cuda.synchronize()
    ref = out.clone(); split(q, k, v, out, lse); torch.cuda.synchronize(); a = out.clone()
    out.zero_(); direct(); torch.cuda.synchronize()
    print("  direct launch equal to runner:", bool(torch.equal(a, out)))
    row("direct C launch", direct)
    row("current raw stream", lambda: torch._C._cuda_getCurrentRawStream(0))
    row("args list copy + 5 substitutions", lambda: [args.copy().__setitem__(i, t) for i, t in zip(range(5), (q, k, v, out, lse))])
    mmask = mt.mask_function(B, 1, kv, q_offset=kv - 1, kv_offset=0, mask_function=mu.causal_mask_function, attention_mask=None, device="cuda")
    mod = torch.nn.Module()
    row("plug-in attention_function", lambda: mt.attention_function(mod, q, k, v, mmask, scaling=sc))
    n = [kv]
    def mf():
        n[0] += 1
        return mt.mask_function(B, 1, n[0], q_offset=n[0] - 1, kv_offset=0, mask_function=mu.causal_mask_function, attention_mask=None, device="cuda")
    row("plug-in mask_function (new kv_len each call)", mf)
    am = torch.ones(B, kv + 2000, dtype=torch.bool, device="cuda")
    n2 = [kv]
    def mf2():
        n2[0] += 1
        return mt.mask_function(B, 1, n2[0], q_offset=n2[0] - 1, kv_offset=0, mask_function=mu.causal_mask_function, attention_mask=am[:, :n2[0]], device="cuda")
    row("plug-in mask_function (2-D mask, new kv_len)", mf2)
    n3 = [kv]
    def sdm():
        n3[0] += 1
        return mu.sdpa_mask(B, 1, n3[0], q_offset=n3[0] - 1, kv_offset=0, mask_function=mu.causal_mask_function, attention_mask=am[:, :n3[0]], device="cuda")
    row("transformers sdpa_mask (2-D mask, new kv_len)", sdm)
    import cProfile, pstats, io
    pr = cProfile.Profile(); pr.enable()
    for _ in range(200): mf2()
    pr.disable(); torch.cuda.synchronize()
    s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(18); print(s.getvalue()[-6000:])

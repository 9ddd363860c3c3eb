"""Host microseconds per decode call (B x 16/8 heads x 1 query x 8k keys, D=128, bf16): maskattn's
attention (replayed plan), the plug-in's attention_function and mask_function, against SDPA and
transformers' sdpa_mask; then cProfile of 200 mask_function calls (top by own time)."""
import cProfile, io, os, pstats, sys
import torch
import torch.nn.functional as F
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks.decode_host import per_call_us
import maskattn.integrations.transformers as mt
from transformers import masking_utils as mu
import triton

print("GPU", torch.cuda.get_device_name(), "torch", torch.__version__, "triton", triton.__version__, flush=True)


def row(name, fn):
    h, w = per_call_us(fn, 500)
    print(f"{name:52s} host {h:7.1f} us  wall {w:7.1f} us", flush=True)


for B in (1, 8):
    kv = 8192
    q = torch.randn(B, 16, 1, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(B, 8, kv, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    sc = 128 ** -0.5
    bm = ma.compile_mask(ma.causal(), 1, kv, device="cuda", block_q=16)
    ma.attention(q, k, v, bm, scale=sc)
    print(f"--- B={B} kv={kv}")
    row("sdpa enable_gqa", lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True))
    row("ma.attention(BlockMap) replayed", lambda: ma.attention(q, k, v, bm, scale=sc))
    plan = next(iter(bm._decode_plans.values()))
    row("plan(q, k, v, fresh_lse=False)", lambda: plan(q, k, v, fresh_lse=False))
    out = torch.empty(B, 16, 1, 128, device="cuda", dtype=torch.bfloat16)
    lse = torch.empty(B, 16, 1, device="cuda", dtype=torch.float32)
    row("Relaunch split(q,k,v,out,lse)", lambda: plan._split(q, k, v, out, lse))
    row("torch.empty (out)", lambda: torch.empty(B, 16, 1, 128, device="cuda", dtype=torch.bfloat16))
    am = torch.ones(B, kv, dtype=torch.bool, device="cuda")
    mmask = mt.mask_function(B, 1, kv, q_offset=kv - 1, kv_offset=0, mask_function=mu.causal_mask_function,
                             attention_mask=am, device="cuda")
    mod = torch.nn.Module()
    row("plug-in attention_function", lambda: mt.attention_function(mod, q, k, v, mmask, scaling=sc))
    ams = torch.ones(B, kv + 2000, dtype=torch.bool, device="cuda")
    n = [kv]

    def mf():
        n[0] += 1
        return mt.mask_function(B, 1, n[0], q_offset=n[0] - 1, kv_offset=0, mask_function=mu.causal_mask_function,
                                attention_mask=ams[:, :n[0]].contiguous(), device="cuda")
    row("plug-in mask_function (2-D mask, new kv_len)", mf)
    n2 = [kv]

    def mf0():
        n2[0] += 1
        return mt.mask_function(B, 1, n2[0], q_offset=n2[0] - 1, kv_offset=0, mask_function=mu.causal_mask_function,
                                attention_mask=None, device="cuda")
    row("plug-in mask_function (no 2-D mask, new kv_len)", mf0)
    n3 = [kv]

    def sdm():
        n3[0] += 1
        return mu.sdpa_mask(B, 1, n3[0], q_offset=n3[0] - 1, kv_offset=0, mask_function=mu.causal_mask_function,
                            attention_mask=ams[:, :n3[0]].contiguous(), device="cuda")
    row("transformers sdpa_mask (2-D mask, new kv_len)", sdm)
    row("contiguous slice alone", lambda: ams[:, :kv].contiguous())
    pr = cProfile.Profile(); pr.enable()
    for _ in range(200):
        mf()
    pr.disable(); torch.cuda.synchronize()
    s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(25)
    print(s.getvalue()[-7000:], flush=True)

"""Host cost per decode call with and without replayed launches; GPU time (do_bench) too."""
import sys, os
import torch
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks.decode_host import per_call_us
from maskattn.kernels import decode as dec
import torch.nn.functional as F
from triton.testing import do_bench

def per_call(fn, n=400):
    return per_call_us(fn, n)[0]  # host microseconds per call

print("GPU", torch.cuda.get_device_name(), torch.__version__)
real_key = dec._plan_key
for B, hq, kv, lq in ((1, 16, 8192, 1), (8, 16, 8192, 1), (8, 32, 32768, 1), (8, 32, 32768, 4)):
    q = torch.randn(B, hq, lq, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(B, 8, kv, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    bm = ma.compile_mask(ma.causal(), lq, kv, device="cuda", block_q=16)
    res = {}
    for name, keyf in (("replay", real_key), ("no replay", lambda *a: None)):
        dec._plan_key = keyf
        h = per_call(lambda: ma.attention(q, k, v, bm))
        g = min(do_bench(lambda: ma.attention(q, k, v, bm), warmup=50, rep=300) for _ in range(3)) * 1e3
        res[name] = (h, g)
    dec._plan_key = real_key
    hs = per_call(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True))
    gs = min(do_bench(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True), warmup=50, rep=300) for _ in range(3)) * 1e3
    o1 = ma.attention(q, k, v, bm); o2 = F.scaled_dot_product_attention(q, k, v, enable_gqa=True, is_causal=False) if lq == 1 else o1
    print(f"B={B} Hq={hq} q={lq} kv={kv}: replay host {res['replay'][0]:.1f} us GPU {res['replay'][1]:.1f} us | "
          f"no replay host {res['no replay'][0]:.1f} us GPU {res['no replay'][1]:.1f} us | sdpa host {hs:.1f} us GPU {gs:.1f} us"
          f" | maxdiff vs sdpa {(o1.float() - o2.float()).abs().max().item():.2e}")

"""Session 14 probe: where tree verification's time goes (host vs kernels, split counts, K/V sharing)."""
import os, sys
import torch
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks.decode_host import per_call_us
from maskattn.kernels import decode as dec
from triton.testing import do_bench
from benchmarks.bench_inference import tree_parents

def per_call(fn, n=200):
    return per_call_us(fn, n)[0]  # host microseconds per call

def kernels(fn, n=20):
    fn(); torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(n): fn()
        torch.cuda.synchronize()
    out = {}
    for e in prof.key_averages():
        if e.device_type == torch.autograd.DeviceType.CUDA or getattr(e, "self_device_time_total", 0) > 0:
            t = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)
            if t > 0: out[e.key[:40]] = round(t / n, 1)
    return out

def bench(fn):
    return min(do_bench(fn, warmup=30, rep=200) for _ in range(3)) * 1e3

print("GPU", torch.cuda.get_device_name(), torch.__version__, flush=True)
tree = ma.tree(tree_parents(), prefix=32704).to("cuda")
real_splits = dec.num_splits
for B, hq, hkv, lq in ((4, 32, 8, 64), (1, 32, 8, 64), (8, 32, 8, 64), (4, 16, 8, 64), (8, 16, 8, 64)):
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(B, hq, lq, 128, device="cuda", dtype=torch.bfloat16, generator=g)
    k, v = (torch.randn(B, hkv, 32768, 128, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(2))
    bm = ma.compile_mask(tree, lq, 32768, device="cuda")
    fn = lambda: ma.attention(q, k, v, bm)
    flop = 4 * B * hq * lq * 32768 * 128
    print(f"B={B} Hq={hq} Hkv={hkv}: host/call {per_call(fn):.0f} us, do_bench {bench(fn):.1f} us, "
          f"kernels {kernels(fn)}", flush=True)
    real_key = dec._plan_key
    dec._plan_key = lambda *a: None
    print(f"   no replay: host/call {per_call(fn):.0f} us, do_bench {bench(fn):.1f} us", flush=True)
    dec._plan_key = real_key
    for s in (1, 2, 3, 4, 6, 8):
        dec.num_splits = lambda *a, s=s: s
        ks = kernels(fn)
        tot = sum(ks.values())
        print(f"   splits={s}: do_bench {bench(fn):.1f} us, kernels {ks} sum {tot:.1f} us "
              f"({flop / tot / 1e6:.0f} TF/s on the kernels)", flush=True)
    dec.num_splits = real_splits

"""Session 40: where decode q=1's ~3 us behind SDPA go (B=8, Hq=32, Hkv=8, D=128, bf16).

1. Key lengths 8k / 16k / 32k / 64k: do_bench medians of maskattn (precompiled map, replayed
   launch) and SDPA (enable_gqa). A line fit t = a + bytes / bw per implementation separates a
   fixed cost (launch ramp, the merge tail) from the streaming rate.
2. torch profiler at 32k: GPU kernel times per call of each implementation (maskattn: one launch
   with the merge fused into the last split; SDPA: its kernels).
3. Split counts 2-16 at 32k (a fresh map each: a map replays its first launch).

Prediction: maskattn's fixed cost ~3 us above SDPA's (the fused merge on the critical path of the
last program), same streaming rate.
"""
import os
import sys

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402
from maskattn.kernels import decode  # noqa: E402
from benchmarks.gpu_setup import flex_and_timer  # noqa: E402

_, _, bench = flex_and_timer("decode_probe.py")
sdpa = torch.nn.functional.scaled_dot_product_attention
B, HQ, HKV, D = 8, 32, 8, 128
print(torch.cuda.get_device_name(), torch.__version__, flush=True)


def inputs(lk):
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(B, HQ, 1, D, device="cuda", dtype=torch.bfloat16, generator=g)
    k, v = (torch.randn(B, HKV, lk, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(2))
    return q, k, v


fits = {"maskattn": [], "sdpa": []}
for lk in (8192, 16384, 32768, 65536):
    q, k, v = inputs(lk)
    bm = ma.compile_mask(ma.causal().to("cuda"), 1, lk, device="cuda")  # as bench_inference.py
    ours = lambda: ma.attention(q, k, v, bm)  # noqa: E731
    theirs = lambda: sdpa(q, k, v, enable_gqa=True)  # noqa: E731
    err = float((ours() - theirs()).abs().max())
    ts = {}
    for rnd in range(3):  # interleaved rounds
        for name, fn in (("maskattn", ours), ("sdpa", theirs)):
            ts.setdefault(name, []).append(bench(fn))
    nbytes = 2 * B * HKV * lk * D * 2
    for name in ts:
        fits[name].append((nbytes, float(np.median(ts[name]))))
    print(f"lk {lk}: maskattn {np.median(ts['maskattn']):.4f} sdpa {np.median(ts['sdpa']):.4f} ms "
          f"(rounds {[round(t, 4) for t in ts['maskattn']]} / {[round(t, 4) for t in ts['sdpa']]}), max diff {err:.2e}",
          flush=True)
for name, pts in fits.items():
    x = np.array([p[0] for p in pts], dtype=float)
    y = np.array([p[1] for p in pts], dtype=float) * 1e-3
    slope, icpt = np.polyfit(x, y, 1)
    print(f"fit {name}: fixed {icpt * 1e6:.2f} us, stream {1 / slope / 1e12:.3f} TB/s", flush=True)

q, k, v = inputs(32768)
bm = ma.compile_mask(ma.causal().to("cuda"), 1, 32768, device="cuda")
for name, fn in (("maskattn", lambda: ma.attention(q, k, v, bm)),
                 ("sdpa", lambda: sdpa(q, k, v, enable_gqa=True))):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(20):
            fn()
        torch.cuda.synchronize()
    kern = {}
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            t = e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total
            kern[e.name[:70]] = kern.get(e.name[:70], 0) + t / 20
    print(f"profile {name}: " + "; ".join(f"{n} {t:.1f} us" for n, t in kern.items()), flush=True)

chosen = decode.num_splits
for s in (2, 3, 4, 5, 6, 8, 12, 16):
    decode.num_splits = lambda *a, s=s: s
    bm = ma.compile_mask(ma.causal().to("cuda"), 1, 32768, device="cuda")
    fn = lambda: ma.attention(q, k, v, bm)  # noqa: E731
    print(f"splits {s}: {np.median([bench(fn) for _ in range(3)]):.4f} ms", flush=True)
decode.num_splits = chosen

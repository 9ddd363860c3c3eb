"""Session 46 A/B (one process, CUDA events, interleaved rounds): decoding 4 tokens under causal()
(B=8, 32 query / 8 KV heads, D=128, bf16, 32k keys) through a precompiled map (the kernels alone),
through a map compiled per call (what attention(q, k, v, causal()) did before session 46), and
without a map (causal rows, ``kernels/unmasked_decode.py``), plus SDPA with its dense mask; then wall
time per call (host-bound when the GPU waits for the host); outputs compared."""
import statistics
import sys
import time

import torch

sys.path.insert(0, ".")
import maskattn as ma  # noqa: E402
from benchmarks.ab import interleaved_medians  # noqa: E402

torch.manual_seed(0)
dev = "cuda"
b, hq, hkv, lq, lk, d = 8, 32, 8, 4, 32768, 128
q = torch.randn(b, hq, lq, d, device=dev, dtype=torch.bfloat16)
k = torch.randn(b, hkv, lk, d, device=dev, dtype=torch.bfloat16)
v = torch.randn(b, hkv, lk, d, device=dev, dtype=torch.bfloat16)
mask = ma.causal()
bm = ma.compile_mask(mask, lq, lk, device=dev)
dense = mask.materialize(lq, lk, device=dev)[0, 0]
kr, vr = (t.repeat_interleave(hq // hkv, 1) for t in (k, v))
sdpa = lambda: torch.nn.functional.scaled_dot_product_attention(q, kr, vr, attn_mask=dense)  # noqa: E731
fns = {"map (precompiled)": lambda: ma.attention(q, k, v, bm),
       "map per call": lambda: ma.attention(q, k, v, ma.compile_mask(mask, lq, lk, device=dev)),
       "causal rows (no map)": lambda: ma.attention(q, k, v, mask),
       "sdpa dense mask": sdpa}
outs = {name: fn() for name, fn in fns.items()}
ref = outs["map (precompiled)"]
for name, out in outs.items():
    print(f"{name}: max |out - map| = {float((out.float() - ref.float()).abs().max()):.3g}")
for name, fn in fns.items():  # warm-up: records, compiles
    for _ in range(3):
        fn()
torch.cuda.synchronize()
print(torch.cuda.get_device_name(), torch.__version__, __import__("triton").__version__)
print("GPU time per call (us, CUDA events, median of 7 rounds x 20):")
for name, t in interleaved_medians(fns, rounds=7, reps=20).items():
    print(f"  {name}: {t:.1f}")
print("wall per call (us, 50 calls then sync, median of 5 rounds):")
walls = {name: [] for name in fns}
for _ in range(5):
    for name, fn in fns.items():
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(50):
            fn()
        torch.cuda.synchronize()
        walls[name].append((time.perf_counter() - t0) / 50 * 1e6)
for name, w in walls.items():
    print(f"  {name}: {statistics.median(w):.1f}")

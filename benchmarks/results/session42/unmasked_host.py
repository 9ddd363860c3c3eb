"""Session 42: decode steps without a mask (``kernels/unmasked_decode.py``) against the map path and SDPA.

1. Kernel time of one call, B=8, 32 / 8 heads, D=128, bf16, 32k keys, q=1 and q=4: ``attention(q, k, v)``
   (DENSE, no map) / ``attention(q, k, v, bm)`` (causal map, real-row view) / SDPA (q=1 only: no mask),
   CUDA events, 3 interleaved rounds of 50 calls. Prediction: none = map within 1% (same loads, no
   masking on either: every tile of the row view is full but the last).
2. Host time of a decode step of a 16-layer model, B=1 and B=8, 16 / 8 heads, 8k keys growing by one
   per step (a new K / V each step, as a dynamic cache): "none" = 16 x attention(q, k, v);
   "map" = compile_mask(causal) + 16 x attention(q, k, v, bm) (what the HF mask function and layers did);
   "causal object" = 16 x attention(q, k, v, causal()) (no map either: one token sees every key);
   "left padded" = 16 x api.attention_after_starts (rows starting at 0, 37, ... keys: no map);
   "padding map" = compile_mask(causal & padding) + 16 x attention(q, k, v, bm) (the plug-in before);
   "sdpa" = 16 x SDPA. GPU held behind a sleep, 24 steps, median of 3 runs. Prediction: none ~ 16 x 17 us
   (replays) ~ 0.3 ms, map ~ 0.3 + ~0.3 ms (compile + first-layer record), sdpa ~ 16 x 21 us.
"""
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402
from benchmarks.ab import interleaved_medians, print_setup  # noqa: E402

print_setup()
dev, bf = "cuda", torch.bfloat16
g = torch.Generator(device=dev).manual_seed(0)

# 1. kernel time
k = torch.randn(8, 8, 32768, 128, device=dev, dtype=bf, generator=g)
v = torch.randn_like(k)
for lq in (1, 4):
    q = torch.randn(8, 32, lq, 128, device=dev, dtype=bf, generator=g)
    bm = ma.compile_mask(ma.causal().to(dev), lq, 32768, device=dev)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=False, enable_gqa=True) if lq == 1 else None
    a, b = ma.attention(q, k, v), ma.attention(q, k, v, bm)
    if lq == 1:
        print(f"q={lq}: |none - map| {(a.float() - b.float()).abs().max().item():.2e}, "
              f"|none - sdpa| {(a.float() - ref.float()).abs().max().item():.2e}")
    fns = {"none": lambda: ma.attention(q, k, v), "map": lambda: ma.attention(q, k, v, bm)}
    if lq == 1:
        fns["sdpa"] = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    med = interleaved_medians(fns, rounds=3, reps=50)
    print(f"kernel q={lq}: " + ", ".join(f"{n} {t:.1f} us" for n, t in med.items()), flush=True)
del k, v

# 2. host time per decode step
STEPS, LAYERS = 24, 16
for batch in (1, 8):
    q = torch.randn(batch, 16, 1, 128, device=dev, dtype=bf, generator=g)
    kv = [(torch.randn(batch, 8, 8192 + s, 128, device=dev, dtype=bf, generator=g),
           torch.randn(batch, 8, 8192 + s, 128, device=dev, dtype=bf, generator=g)) for s in range(STEPS)]
    causal = ma.causal().to(dev)

    def none():
        for kk, vv in kv:
            for _ in range(LAYERS):
                ma.attention(q, kk, vv)

    def causal_object():  # the mask object each layer: one token sees every key, so no map either
        for kk, vv in kv:
            for _ in range(LAYERS):
                ma.attention(q, kk, vv, causal)

    def mapped():
        for kk, vv in kv:
            bm = ma.compile_mask(causal, 1, kk.shape[2], device=dev)
            for _ in range(LAYERS):
                ma.attention(q, kk, vv, bm)

    starts = torch.arange(batch, device=dev, dtype=torch.int32) * 37  # left padding of 0, 37, ... keys

    def left_padded():  # what the plug-in now does for a left-padded batch: no map either
        for kk, vv in kv:
            for _ in range(LAYERS):
                ma.api.attention_after_starts(q, kk, vv, starts)

    def padding_map():  # what it did before: the padding map of each step, then its replays
        for kk, vv in kv:
            valid = torch.arange(kk.shape[2], device=dev)[None] >= starts[:, None]
            bm = ma.compile_mask(causal & ma.padding(valid), 1, kk.shape[2], device=dev)
            for _ in range(LAYERS):
                ma.attention(q, kk, vv, bm)

    def sdpa():
        for kk, vv in kv:
            for _ in range(LAYERS):
                F.scaled_dot_product_attention(q, kk, vv, enable_gqa=True)

    runs = {"none": none, "causal object": causal_object, "map": mapped, "left padded": left_padded,
            "padding map": padding_map, "sdpa": sdpa}
    for fn in runs.values():  # warm-up: compiles, records
        fn()
    torch.cuda.synchronize()
    host = {n: [] for n in runs}
    wall = {n: [] for n in runs}
    for _ in range(3):
        for name, fn in runs.items():
            torch.cuda._sleep(int(1e9))
            t0 = time.perf_counter()
            fn()
            host[name].append((time.perf_counter() - t0) / STEPS * 1e6)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            wall[name].append((time.perf_counter() - t0) / STEPS * 1e6)
    print(f"B={batch}, 16 layers, 8k keys: per step " + ", ".join(
        f"{n} host {statistics.median(host[n]):.0f} us / wall {statistics.median(wall[n]):.0f} us" for n in runs),
        flush=True)
    from maskattn.kernels import unmasked_decode
    print(f"  unmasked plans recorded: {len(unmasked_decode._PLANS)}")
    del kv

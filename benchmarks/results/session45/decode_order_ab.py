"""Session 45: the portable decode kernel's grid order, main (units fastest, splits on axis 1) against
this checkout (one axis: row blocks fastest, then the splits of one KV head's keys, as cuDNN's
decode grid (4, 8, 8) orders them). ncu (call 1): same bytes (1.07 GB), same grid size (256) and
block (128 threads), but cuDNN's kernel 341 us at 94% of DRAM peak against ours 348 us at 92%.

Decode q=1 / q=4 (B=8, 32 / 8 heads, D=128, bf16, 32k keys, causal map compiled once), mapless q=1,
SDPA beside; CUDA-event medians of 20 calls x 7 interleaved rounds; outputs compared."""
import os
import sys

import torch

sys.path.insert(0, os.getcwd())
from benchmarks.ab import env_packages, interleaved_medians, print_setup  # noqa: E402

PKGS = env_packages("maskattn_main maskattn")
print_setup("|", " ".join(f"{n}={p.__file__}" for n, p in PKGS.items()))
B, HQ, HKV, L, D = 8, 32, 8, 32768, 128
g = torch.Generator(device="cuda").manual_seed(0)
k, v = (torch.randn(B, HKV, L, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(2))
sdpa = torch.nn.functional.scaled_dot_product_attention
for lq in (1, 4):
    q = torch.randn(B, HQ, lq, D, device="cuda", dtype=torch.bfloat16, generator=g)
    fns, outs = {}, {}
    for name, ma in PKGS.items():
        bm = ma.compile_mask(ma.causal(), lq, L, device="cuda")
        fns[f"{name} map"] = (lambda ma=ma, bm=bm: ma.attention(q, k, v, bm))
        if lq == 1:
            fns[f"{name} none"] = (lambda ma=ma: ma.attention(q, k, v))
        outs[name] = ma.attention(q, k, v, bm)
    if lq == 1:
        fns["sdpa"] = lambda: sdpa(q, k, v, enable_gqa=True)
    else:
        fns["sdpa"] = lambda: sdpa(q, k, v, attn_mask=ma.causal().materialize(lq, L, device="cuda"), enable_gqa=True)
    for f in fns.values():
        f()
    torch.cuda.synchronize()
    med = interleaved_medians(fns, rounds=7, reps=20)
    names = list(outs)
    diff = float((outs[names[0]].float() - outs[names[-1]].float()).abs().max())
    print(f"q={lq}: " + ", ".join(f"{n} {t:.1f} us" for n, t in med.items()) + f" | max |diff| {diff:.2e}", flush=True)

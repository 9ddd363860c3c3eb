"""Session 45: decode q=1 (B=8, 32 query / 8 KV heads, D=128, bf16, 32k keys) run a few times, for
ncu to read the DRAM counters of maskattn's split kernel and SDPA's (cuDNN) kernels side by side.

    python ncu_decode.py maskattn|sdpa

Session 40 found the two streaming at different rates (3.193 against 3.230 TB/s) with equal fixed
costs; this asks whether maskattn reads more bytes than K / V (1.074 GB) or reads them less
efficiently (DRAM throughput / row-buffer behaviour)."""
import os
import sys

import torch

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402

which = sys.argv[1]
B, HQ, HKV, L, D = 8, 32, 8, 32768, 128
g = torch.Generator(device="cuda").manual_seed(0)
q = torch.randn(B, HQ, 1, D, device="cuda", dtype=torch.bfloat16, generator=g)
k, v = (torch.randn(B, HKV, L, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(2))
if which == "maskattn":
    bm = ma.compile_mask(ma.causal(), 1, L, device="cuda")
    fn = lambda: ma.attention(q, k, v, bm)  # noqa: E731
else:
    fn = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)  # noqa: E731
for _ in range(5):
    fn()
torch.cuda.synchronize()
print(which, "K+V GB", 2 * k.numel() * 2 / 1e9)

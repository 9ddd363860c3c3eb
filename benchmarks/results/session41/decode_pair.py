"""Session 41 (for ncu, ``next_call.sh``): decode q=1 (B=8, 32 / 8 heads, D=128, bf16, 32k keys),
maskattn then SDPA, three calls each after a warm-up, so that ncu profiles both kernels on the
same inputs."""
import os
import sys

import torch

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402

g = torch.Generator(device="cuda").manual_seed(0)
q = torch.randn(8, 32, 1, 128, device="cuda", dtype=torch.bfloat16, generator=g)
k, v = (torch.randn(8, 8, 32768, 128, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(2))
bm = ma.compile_mask(ma.causal().to("cuda"), 1, 32768, device="cuda")
for _ in range(3):
    ma.attention(q, k, v, bm)
    torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)
torch.cuda.synchronize()

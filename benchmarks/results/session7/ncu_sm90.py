# Runs at commit 2fb1eb7, which still has maskattn/kernels/flash_fwd_sm90.py (removed after it).
import sys, torch
import maskattn as ma
from maskattn.kernels import flash_fwd_sm90
from benchmarks import families
flash_fwd_sm90.ENABLED = sys.argv[1] == "sm90"
L = int(sys.argv[2])
q, k, v = (torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
bm = ma.compile_mask(families.mask("causal", L), L, L, device="cuda")
for _ in range(4):
    ma.attention(q, k, v, bm)
torch.cuda.synchronize()

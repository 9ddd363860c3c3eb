"""Why the benchmark's longformer / documents 8k forward rows (through ma.attention) are slower than
the kernel A/B: ma.attention and the kernel alone, HEAD's kernel module vs the working tree's,
do_bench medians, interleaved. B=1, H=16, D=128, bf16."""
import os, sys
import torch
import triton
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks.ab import load_kernel_variant
from benchmarks import families
from maskattn.kernels import forward, flash_fwd_sm90 as tree
from maskattn.kernels.forward import map_strides

head = load_kernel_variant(".dev/fwd_head.py", "head_flash_fwd_sm90")
for fam in ("longformer", "documents", "sliding"):
    L = 8192
    bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    q, k, v = (torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    sb, sh = map_strides(bm)
    o = torch.empty_like(q); l = torch.empty(1, 16, L, device="cuda")
    res = {}
    for rnd in range(3):
        for name, mod in (("head", head), ("tree", tree)):
            forward.flash_fwd_sm90 = mod
            res.setdefault(name + " attention()", []).append(triton.testing.do_bench(lambda: ma.attention(q, k, v, bm)))
            res.setdefault(name + " kernel", []).append(triton.testing.do_bench(
                lambda: mod.sm90_forward(q, k, v, o, l, bm, 128 ** -0.5, 128, 128, sb, sh)))
    forward.flash_fwd_sm90 = tree
    print(fam, L, " | ".join(f"{n} {min(t) * 1e3:.1f} us" for n, t in res.items()), flush=True)

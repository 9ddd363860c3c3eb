"""The packed (split-KV) path of the Hopper forward after the scheduling change: HEAD's kernel
module vs the working tree's, through ma.attention, for tree verification (64 nodes on a 32 704-token
prefix, B=4, 32 / 8 heads) and chunked prefill 4k / 32k (B=1); interleaved do_bench medians."""
import os, sys
import torch
import triton
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks.ab import load_kernel_variant
from benchmarks.bench_inference import tree_parents
from maskattn.kernels import flash_decode_sm90, forward, flash_fwd_sm90 as tree

head = load_kernel_variant(".dev/fwd_head.py", "head_flash_fwd_sm90")
for label, B, lq, mask in (("tree verify", 4, 64, ma.tree(tree_parents(), prefix=32704)), ("chunked prefill", 1, 4096, ma.causal())):
    lk = 32768
    q = torch.randn(B, 32, lq, 128, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(B, 8, lk, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    bm = ma.compile_mask(mask.to("cuda"), lq, lk, device="cuda")
    res, outs = {}, {}
    for rnd in range(3):
        for name, mod in (("head", head), ("tree", tree)):
            flash_decode_sm90.flash_fwd_sm90 = forward.flash_fwd_sm90 = mod
            res.setdefault(name, []).append(triton.testing.do_bench(lambda: ma.attention(q, k, v, bm)))
            outs[name] = ma.attention(q, k, v, bm)
    flash_decode_sm90.flash_fwd_sm90 = forward.flash_fwd_sm90 = tree
    print(label, " | ".join(f"{n} {min(t) * 1e3:.1f} us" for n, t in res.items()),
          f"| head/tree {min(res['head']) / min(res['tree']):.3f}x | outputs equal {torch.equal(outs['head'], outs['tree'])}", flush=True)

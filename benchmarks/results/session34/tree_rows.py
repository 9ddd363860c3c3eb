"""Session 34: is tree verification's packed kernel held back by the two 128-row blocks of a KV
head reading the same K / V (L2 -> SM traffic twice the HBM bytes), or by how fast it streams
from HBM at all? Same K / V bytes (B=4, 8 KV heads, 32k keys), three packings:

* 64-node tree, 32 query heads: 256 packed rows per KV head, two row blocks (the standard case);
* 32-node tree, 32 query heads: 128 packed rows, one row block (half the products);
* 64-node tree, 16 query heads: 128 packed rows, one row block (half the products).

If the one-block cases run near the copy rate (~3 TB/s of K / V, ~180 us) the siblings' double
reads are the limit; if they take about as long as the standard case, the kernel's streaming
from HBM is. Medians of CUDA-event times, interleaved rounds; a 4 GB copy gives the copy rate."""
import os
import sys

import torch

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402
from benchmarks.ab import interleaved_medians, print_setup  # noqa: E402
from benchmarks.bench_inference import tree_parents  # noqa: E402

B, HKV, LK, D = 4, 8, 32768, 128
print_setup("| tree_rows")
dev = "cuda"
g = torch.Generator(device=dev).manual_seed(0)
k, v = (torch.randn(B, HKV, LK, D, device=dev, dtype=torch.bfloat16, generator=g) for _ in range(2))
kv_bytes = 2 * k.numel() * k.element_size()
fns, flops = {}, {}
for nodes, hq in ((64, 32), (32, 32), (64, 16)):
    q = torch.randn(B, hq, nodes, D, device=dev, dtype=torch.bfloat16, generator=g)
    bm = ma.compile_mask(ma.tree(tree_parents(nodes), prefix=LK - nodes), nodes, LK, device=dev)
    name = f"tree {nodes} x {hq} heads ({hq // HKV * nodes} packed rows)"
    fns[name] = (lambda q=q, bm=bm: ma.attention(q, k, v, bm))
    flops[name] = 4 * B * hq * nodes * LK * D
src = torch.empty(2**31, dtype=torch.int16, device=dev)
dst = torch.empty_like(src)
fns["copy 4 GB"] = lambda: dst.copy_(src)
for fn in fns.values():
    fn()
torch.cuda.synchronize()
med = interleaved_medians(fns, 5, 10)
for name, us in med.items():
    if name.startswith("copy"):
        print(f"{name:40s} {us:8.1f} us  copy rate {2 * src.numel() * 2 / us / 1e6:.2f} TB/s (read + write)")
    else:
        print(f"{name:40s} {us:8.1f} us  K/V {kv_bytes / us / 1e6:.2f} TB/s  {flops[name] / us / 1e6:.0f} TFLOP/s")

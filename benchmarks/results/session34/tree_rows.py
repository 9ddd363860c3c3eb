"""Session 34: is tree verification's packed kernel held back by the two 128-row items of a KV
head reading the same K / V (L2 -> SM traffic twice the HBM bytes), or by how fast it streams
from HBM at all? Same K / V bytes (B=4, 8 KV heads, 32k keys), three packings:

* 64-node tree, 32 query heads: 256 packed rows per KV head (the standard case: two 128-row
  items, or one wide 256-row item on branch ``s34-wide-packed``);
* 32-node tree, 32 query heads: 128 packed rows, one item (half the products);
* 64-node tree, 16 query heads: 128 packed rows, one item (half the products).

If the one-item cases run near the copy rate (~3 TB/s of K / V, ~180 us) the siblings' double
reads are the limit; if they take about as long as the standard case, the kernel's streaming
from HBM is. ``PKGS="maskattn_nt maskattn_wide"`` (copies in ``.ab/``, as ``ab_pkgs.py`` takes
them; default: this checkout's ``maskattn``) times each packing with each package, interleaved,
against the first. Medians of CUDA-event times; a 4 GB copy gives the copy rate."""
import importlib
import os
import sys

import torch

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.join(os.getcwd(), ".ab"))
from benchmarks.ab import interleaved_medians, max_difference, print_setup  # noqa: E402
from benchmarks.bench_inference import tree_parents  # noqa: E402

NAMES = os.environ.get("PKGS", "maskattn").split()
PKGS = {name: importlib.import_module(name) for name in NAMES}
B, HKV, LK, D = 4, 8, 32768, 128
print_setup("| tree_rows |", " ".join(f"{n}={p.__file__}" for n, p in PKGS.items()))
dev = "cuda"
g = torch.Generator(device=dev).manual_seed(0)
k, v = (torch.randn(B, HKV, LK, D, device=dev, dtype=torch.bfloat16, generator=g) for _ in range(2))
kv_bytes = 2 * k.numel() * k.element_size()
for nodes, hq in ((64, 32), (32, 32), (64, 16)):
    q = torch.randn(B, hq, nodes, D, device=dev, dtype=torch.bfloat16, generator=g)
    fns = {}
    for name, ma in PKGS.items():
        bm = ma.compile_mask(ma.tree(tree_parents(nodes), prefix=LK - nodes), nodes, LK, device=dev)
        fns[name] = (lambda ma=ma, bm=bm: ma.attention(q, k, v, bm))
    outs = {name: fn() for name, fn in fns.items()}
    med = interleaved_medians(fns, 5, 10)
    flops = 4 * B * hq * nodes * LK * D
    label = f"tree {nodes} x {hq} heads ({hq // HKV * nodes} packed rows)"
    for name in NAMES:
        us = med[name]
        extra = "" if name == NAMES[0] else (f"  {med[NAMES[0]] / us:.3f}x, max diff "
                                             f"{max_difference((outs[NAMES[0]],), (outs[name],)):.1e}")
        print(f"{label:36s} {name:14s} {us:8.1f} us  K/V {kv_bytes / us / 1e6:.2f} TB/s  "
              f"{flops / us / 1e6:.0f} TFLOP/s{extra}", flush=True)
src = torch.empty(2**31, dtype=torch.int16, device=dev)
dst = torch.empty_like(src)
us = interleaved_medians({"copy": lambda: dst.copy_(src)}, 3, 10)["copy"]
print(f"copy 4 GB {us:8.1f} us  {2 * src.numel() * 2 / us / 1e6:.2f} TB/s (read + write)")

"""Session 24 backward A/B, one process: variants of ``flash_bwd_sm90.py`` recorded each on its
own map of the same mask (the first backward records a plan on the map; later calls replay it),
timed interleaved (do_bench medians of the backward alone on a retained graph). B=1, D=128, bf16.

Variants (files given as name=path; "tree" = the working tree's module): e.g. head (the committed
kernel: query-major bitmaps read after S^T, LPT lists), bits (key-major bitmaps loaded before the
products), tree (bits + locality-ordered lists). dK / dV compared bitwise with the first
variant's, dQ by max difference (fp32 reduce-adds in another order)."""
import os, statistics, sys
import torch
import triton
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks import families
from benchmarks.ab import load_kernel_variant
from maskattn.kernels import backward, flash_bwd_sm90

ROUNDS = int(os.environ.get("AB_ROUNDS", 5))
CASES = [c.split(":") for c in os.environ.get(
    "AB_CASES", "documents:32768:16:16 documents:8192:16:16 sliding:32768:16:16 sliding:8192:16:16 "
                "causal:8192:16:16 causal:32768:16:16 documents:8192:32:8").split()]
bench = lambda fn: float(triton.testing.do_bench(fn, warmup=25, rep=150, return_mode="median"))  # noqa: E731
mods = {}
for i, arg in enumerate(sys.argv[1:]):
    name, path = arg.split("=")
    mods[name] = flash_bwd_sm90 if path == "tree" else load_kernel_variant(path, f"ab{i}_flash_bwd_sm90")
print("GPU", torch.cuda.get_device_name(), torch.__version__, triton.__version__, flush=True)
base = next(iter(mods))
for fam, L, hq, hkv in CASES:
    L, hq, hkv = int(L), int(hq), int(hkv)
    mask = families.mask(fam, L)
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(1, hq, L, 128, device="cuda", generator=g, dtype=torch.bfloat16).requires_grad_()
    k, v = (torch.randn(1, hkv, L, 128, device="cuda", generator=g, dtype=torch.bfloat16).requires_grad_()
            for _ in range(2))
    do = torch.randn(1, hq, L, 128, device="cuda", generator=g, dtype=torch.bfloat16)
    outs, grads = {}, {}
    for name, mod in mods.items():
        bm = ma.compile_mask(mask, L, L, device="cuda")
        backward.flash_bwd_sm90 = mod
        outs[name] = ma.attention(q, k, v, bm)
        grads[name] = torch.autograd.grad(outs[name], (q, k, v), do, retain_graph=True)  # records the plan
        backward.flash_bwd_sm90 = flash_bwd_sm90
    times = {name: [] for name in mods}
    for _ in range(ROUNDS):
        for name in mods:
            out = outs[name]
            times[name].append(bench(lambda: torch.autograd.grad(out, (q, k, v), do, retain_graph=True)))
    med = {name: statistics.median(t) for name, t in times.items()}
    line = f"{fam:9s} {L:6d} {hq}:{hkv} | {base} {med[base]:.4f} ms"
    for name in mods:
        if name == base:
            continue
        same = all(torch.equal(a, b) for a, b in zip(grads[name][1:], grads[base][1:]))
        dq = float((grads[name][0].float() - grads[base][0].float()).abs().max())
        line += f" | {name} {med[name]:.4f} ms {med[base] / med[name]:.3f}x dK/dV {'=' if same else 'DIFFER'} dQ {dq:.1e}"
    print(line + f" | rounds {[[round(x, 3) for x in t] for t in times.values()]}", flush=True)

"""A/B of variants of the Hopper forward kernel: copies of flash_fwd_sm90.py given as arguments
(the first is the baseline; "tree" names the working tree's module), same inputs, same process,
interleaved.
B=1, H=16 (or the case's Hq:Hkv), D=128, bf16; CUDA-event medians over repeated launches."""
import os, sys, statistics
import torch
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks import families
from maskattn.kernels import flash_fwd_sm90 as new
from maskattn.kernels.forward import map_strides
from maskattn.kernels.tma import ensure_allocator
from benchmarks.ab import event_times_us as timed, load_kernel_variant

mods = {}
for i, path in enumerate(sys.argv[1:]):
    if path == "tree":
        mods["tree"] = new
        continue
    mods[os.path.basename(path)[:-3]] = load_kernel_variant(path, f"variant{i}_flash_fwd_sm90")
base = next(iter(mods))
print("GPU", torch.cuda.get_device_name(), torch.__version__, flush=True)
ensure_allocator()

# AB_CASES="family:L ..." (session 19), or "family:L:Hq:Hkv" for GQA (session 25); default: session 18's cases
cases = [(f, 32768, 16, 16) for f in ("causal", "sliding", "documents", "longformer", "tree")] + [("causal", 8192, 16, 16), ("sliding", 8192, 16, 16)]
if os.environ.get("AB_CASES"):
    cases = [(c[0], int(c[1]), int(c[2]), int(c[3])) if len(c) == 4 else (c[0], int(c[1]), 16, 16)
             for c in (x.split(":") for x in os.environ["AB_CASES"].split())]
for fam, L, hq, hkv in cases:
    bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    q = torch.randn(1, hq, L, 128, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(1, hkv, L, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    sb, sh = map_strides(bm)
    outs = {}
    fns = {}
    for name, mod in mods.items():
        o = torch.empty_like(q); l = torch.empty(1, hq, L, device="cuda")
        outs[name] = (o, l)
        fns[name] = (lambda mod=mod, o=o, l=l: mod.sm90_forward(q, k, v, o, l, bm, 128 ** -0.5, 128, 128, sb, sh))
    for fn in fns.values():
        for _ in range(3): fn()
    reps = 4 if L >= 131072 else 20 if L >= 32768 else 60
    t = {n: [] for n in fns}
    for _ in range(5):
        for n, fn in fns.items():
            t[n] += timed(fn, reps)
    med = {n: statistics.median(x) for n, x in t.items()}
    line = f"{fam:10s} {L:6d} {hq}:{hkv}: {base} {med[base]:8.1f} us"
    for n in mods:
        if n != base:
            same = torch.equal(outs[n][0], outs[base][0])
            line += f" | {n} {med[base] / med[n]:.3f}x{'' if same else ' (out differs)'}"
    print(line, flush=True)

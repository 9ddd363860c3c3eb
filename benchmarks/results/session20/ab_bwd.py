"""A/B of variants of the one-pass Hopper backward: copies of flash_bwd_sm90.py given as arguments
(the first is the baseline; "tree" names the working tree's module), same inputs, same process,
interleaved; dK/dV compared bitwise with the baseline's, dQ by max difference (fp32 reduce-adds
in varying order). B=1, H=16, D=128, bf16; CUDA-event medians.

AB_CASES="family:L ..." where family is a benchmark family, ``band<c>`` (a block-sparse band of
c full 128 x 128 tiles per key tile: no partial tiles) or ``slide<w>`` (sliding_window(w));
AB_ROUNDS: interleaved rounds (default 4); AB_HEADS="Hq:Hkv" (default 16:16)."""
import os, sys, statistics
import torch
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks import families
from maskattn.kernels import flash_bwd_sm90 as tree_mod
from maskattn.kernels.forward import map_strides
from maskattn.kernels.tma import ensure_allocator
from benchmarks.ab import event_times_us as timed, load_kernel_variant


def make_mask(fam, L):
    if fam.startswith("band"):
        c, n = int(fam[4:]), -(-L // 128)
        i = torch.arange(n)
        return ma.block_sparse((i[:, None] - i[None, :] >= 0) & (i[:, None] - i[None, :] < c), 128, 128)
    if fam.startswith("slide"):
        return ma.sliding_window(int(fam[5:]))
    return families.mask(fam, L)


mods = {}
for i, path in enumerate(sys.argv[1:]):
    mods["tree" if path == "tree" else os.path.basename(path)[:-3]] = (
        tree_mod if path == "tree" else load_kernel_variant(path, f"variant{i}_flash_bwd_sm90"))
base = next(iter(mods))
print("GPU", torch.cuda.get_device_name(), torch.__version__, flush=True)
ensure_allocator()
cases = [(f, int(L)) for f, L in (c.split(":") for c in os.environ["AB_CASES"].split())]
for fam, L in cases:
    bm = ma.compile_mask(make_mask(fam, L), L, L, device="cuda")
    hq, hkv = (int(x) for x in os.environ.get("AB_HEADS", "16:16").split(":"))
    q, do = (torch.randn(1, hq, L, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    k, v = (torch.randn(1, hkv, L, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    out, lse = ma.attention(q, k, v, bm, return_lse=True)
    delta = (out.float() * do.float()).sum(-1)
    sb, sh = map_strides(bm)
    res, fns = {}, {}
    for name, mod in mods.items():
        dk, dv = torch.empty_like(k), torch.empty_like(v)
        fns[name] = (lambda mod=mod, dk=dk, dv=dv: mod.backward_sm90(q, k, v, do, lse, delta, dk, dv, bm, 128 ** -0.5,
                                                                     128, 128, sb, sh))
        res[name] = (fns[name](), dk, dv)
    reps = 2 if L >= 131072 else 5 if L >= 32768 else 20
    t = {n: [] for n in fns}
    for _ in range(int(os.environ.get("AB_ROUNDS", 4))):
        for n, fn in fns.items():
            t[n] += timed(fn, reps)
    med = {n: statistics.median(x) for n, x in t.items()}
    per_head = hq // (bm.batch * bm.heads)  # the map may broadcast over heads
    n_full, n_part = ((p[-1] - p[0]).item() * per_head for p in (bm.t_full_ptr, bm.t_part_ptr))
    items = hkv * bm.n_k_tiles
    line = (f"{fam:10s} {L:6d}: items {items} tiles full/part {n_full}/{n_part} | {base} {med[base]:9.1f} us"
            f" ({med[base] * 132 / items:.2f} us per item-slot)")
    for n in mods:
        if n != base:
            same = torch.equal(res[n][1], res[base][1]) and torch.equal(res[n][2], res[base][2])
            dq = (res[n][0].float() - res[base][0].float()).abs().max().item()
            line += f" | {n} {med[base] / med[n]:.3f}x{'' if same else ' (dK/dV differ)'} dq {dq:.1e}"
    print(line, flush=True)

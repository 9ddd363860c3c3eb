"""Session 27 (for a later device call): the item order of the launches whose items start as programs
free up, in sections of a few heads whose operands fit the L2 (``sm90_schedule.l2_section``, as
FlashAttention-4's heaviest-first scheduler swizzles heads), against plain rank-major order over every
head (``section`` = all: the order before this branch).

Forward (counter schedule: causal, and any map with long rows), same kernel, only ``section`` differs:
  all     - every head in one section (the order before)
  rule    - ``counter_section`` (16 heads, D=128: 8 heads at 8k, 2 at 32k, 1 at 128k)
  sN      - N query heads per section
  desc_*  - the same with each row's full key tiles walked last to first (a variant module made here
            from the branch's file): programs that start together on one head then read different K / V
            tiles at any moment (FlashAttention walks its key blocks from the diagonal down), instead of
            all reading key tile 0, 1, ... in step
Backward (one program per key tile: causal 16k and longer): ``column_section`` forced per variant
while the map's first backward records its launch.

Prediction (DRAM model, ``counter_order_model.py``): forward causal 32k 4.21 -> 0.27 GB (sections of
1-2), 8k 0.21 -> 0.07 GB; backward causal 32k 13.5 -> 0.83 GB, 8k (lists, unchanged). Time: forward
causal 32k 1.01-1.04x, 128k 1.03-1.08x, 8k 1.00-1.01x; backward causal 32k 1.03-1.10x; Longformer
unchanged (its rule keeps one section). desc: +0-2% if programs reading one tile in step cost
something (the session-26 guess about the forward's head-by-head lists).

B=1, D=128, bf16; CUDA-event medians (forward, direct ``sm90_forward`` calls), do_bench medians of the
backward alone on a retained graph. Usage: python benchmarks/results/session27/ab_sections.py
"""
import os
import statistics
import sys
import tempfile

import torch
import triton

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402
from benchmarks.ab import event_times_us, load_kernel_variant  # noqa: E402
from maskattn.kernels import flash_bwd_sm90 as fb, flash_fwd_sm90 as f  # noqa: E402
from maskattn.kernels.forward import map_strides  # noqa: E402
from maskattn.kernels.tma import ensure_allocator  # noqa: E402

SRC = open(f.__file__).read()
OLD = """        if j < nf:
            t = gl.load(FULL_IDX + f0 + j // SUB_N)
        else:
            t = gl.load(PART_IDX + p0 + (j - nf) // SUB_N)
        return t * TILE_K + (j % SUB_N) * BLOCK_N"""
NEW = """        jj = j
        if j < nf:
            jj = nf - 1 - j
            t = gl.load(FULL_IDX + f0 + jj // SUB_N)
        else:
            t = gl.load(PART_IDX + p0 + (j - nf) // SUB_N)
        return t * TILE_K + (jj % SUB_N) * BLOCK_N"""
assert OLD in SRC
tmp = tempfile.mkdtemp()
open(os.path.join(tmp, "fwd_desc.py"), "w").write(SRC.replace(OLD, NEW))
desc = load_kernel_variant(os.path.join(tmp, "fwd_desc.py"), "variant_fwd_desc")

print("GPU", torch.cuda.get_device_name(), torch.__version__, triton.__version__, flush=True)
ensure_allocator()
ROUNDS = int(os.environ.get("AB_ROUNDS", 5))
FWD = [c.split(":") for c in os.environ.get(
    "FWD_CASES", "causal:32768:16:16 causal:8192:16:16 causal:131072:16:16 causal:32768:32:8 causal:16384:16:16 "
                 "longformer:32768:16:16").split()]
BWD = [c.split(":") for c in os.environ.get("BWD_CASES", "causal:32768:16:16 causal:16384:16:16 causal:32768:32:8").split()]


def inputs(L, hq, hkv, grad=False):
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(1, hq, L, 128, device="cuda", generator=g, dtype=torch.bfloat16)
    k, v = (torch.randn(1, hkv, L, 128, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(2))
    if grad:
        q, k, v = (x.requires_grad_() for x in (q, k, v))
    return q, k, v


for fam, L, hq, hkv in FWD:
    L, hq, hkv = int(L), int(hq), int(hkv)
    q, k, v = inputs(L, hq, hkv)
    bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    sb, sh = map_strides(bm)
    if not f.dynamic_schedule(bm, hq // (bm.batch * bm.heads)):
        print(f"fwd {fam} {L}: static schedule (lists), no counter order to compare", flush=True)
        continue
    rule = f.counter_section(bm, 1, hq, hq // hkv, L, 128, 2, f.sm_count(q.device))
    sections = {"all": hq, "rule": rule}
    for s in (1, 2, 4, 8):
        if s < hq and s != rule and s % (hq // hkv) == 0:
            sections[f"s{s}"] = s
    variants = {name: (f, s) for name, s in sections.items()}
    variants.update({"desc_all": (desc, hq), "desc_rule": (desc, rule)})
    outs, fns = {}, {}
    for name, (mod, s) in variants.items():
        o, lse = torch.empty_like(q), torch.empty(1, hq, L, device="cuda")
        outs[name] = o

        def run(mod=mod, s=s, o=o, lse=lse):
            saved = mod.counter_section
            mod.counter_section = lambda *a: s
            try:
                mod.sm90_forward(q, k, v, o, lse, bm, 128 ** -0.5, 128, 128, sb, sh)
            finally:
                mod.counter_section = saved
        fns[name] = run
    for fn in fns.values():
        for _ in range(2):
            fn()
    torch.cuda.synchronize()
    reps = 3 if L >= 131072 else 10 if L >= 32768 else 40
    times = {name: [] for name in fns}
    for _ in range(ROUNDS):
        for name, fn in fns.items():
            times[name] += event_times_us(fn, reps)
    med = {name: statistics.median(t) for name, t in times.items()}
    line = f"fwd {fam:10s} {L:6d} {hq}:{hkv} rule={rule} | all {med['all']:.1f} us"
    for name in fns:
        if name == "all":
            continue
        same = torch.equal(outs[name], outs["all"])
        diff = "=" if same else f"diff {float((outs[name].float() - outs['all'].float()).abs().max()):.1e}"
        line += f" | {name} {med['all'] / med[name]:.3f}x {diff}"
    print(line, flush=True)

bench = lambda fn: float(triton.testing.do_bench(fn, warmup=25, rep=150, return_mode="median"))  # noqa: E731
for fam, L, hq, hkv in BWD:
    L, hq, hkv = int(L), int(hq), int(hkv)
    q, k, v = inputs(L, hq, hkv, grad=True)
    do = torch.randn_like(q)
    mask = families.mask(fam, L)
    probe = ma.compile_mask(mask, L, L, device="cuda")
    if fb.short_columns(probe, hq // hkv):
        print(f"bwd {fam} {L}: persistent grid (lists), no launch order to compare", flush=True)
        continue
    rule = fb.column_section(probe, 1, hkv, hq // hkv, L, 128, 2, fb.sm_count(q.device))
    sections = {"all": hkv, "rule": rule}
    for s in (1, 2, 4):
        if s < hkv and s != rule:
            sections[f"s{s}"] = s
    outs, grads = {}, {}
    saved = fb.column_section
    for name, s in sections.items():
        bm = ma.compile_mask(mask, L, L, device="cuda")  # a fresh map: its first backward records the launch
        fb.column_section = lambda *a, s=s: s
        try:
            outs[name] = ma.attention(q, k, v, bm)
            grads[name] = torch.autograd.grad(outs[name], (q, k, v), do, retain_graph=True)
        finally:
            fb.column_section = saved
    times = {name: [] for name in outs}
    for _ in range(ROUNDS):
        for name, out in outs.items():
            fb.column_section = lambda *a, s=sections[name]: s  # should a call not replay its recorded launch
            try:
                times[name].append(bench(lambda out=out: torch.autograd.grad(out, (q, k, v), do, retain_graph=True)))
            finally:
                fb.column_section = saved
    med = {name: statistics.median(t) for name, t in times.items()}
    line = f"bwd {fam:10s} {L:6d} {hq}:{hkv} rule={rule} | all {med['all']:.4f} ms"
    for name in outs:
        if name == "all":
            continue
        same = all(torch.equal(a, b) for a, b in zip(grads[name][1:], grads["all"][1:]))
        dq = float((grads[name][0].float() - grads["all"][0].float()).abs().max())
        line += f" | {name} {med['all'] / med[name]:.3f}x dK/dV {'=' if same else 'DIFFER'} dQ {dq:.1e}"
    print(line, flush=True)

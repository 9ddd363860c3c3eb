"""Session 28's script, run in session 29 on branch s29-dq-overlap (main with
``session28/bwd_dq_overlap_untested.diff`` applied; on main it would import main's kernel
twice): the one-pass Hopper backward with dQ's way out overlapped
with the dK product (branch s28-bwd-dq-overlap) against main's (``.ab/bwd_main.py``: main's
``flash_bwd_sm90.py``, made as in ``call_dq_overlap.sh``; carry [".ab"]), same inputs, interleaved
in one process.

What changed: per 64-row query block a consumer issued dV, dK, then (after the dS hand-over) dQ,
waited for all three, and only then moved dQ from registers to shared memory and issued its TMA
reduce-add, so the tensor cores idled during that epilogue while both consumers, in step through
the hand-over, did it at once. Now it issues dV, dQ, dK, waits for dV and dQ only, and moves dQ
out while dK runs (FlashAttention-4's Hopper backward orders its products the same way).

Prediction: the epilogue (16 STS.64 per thread, a proxy fence, a warpgroup barrier, the TMA
issue: ~200-300 cycles) out of ~2,500 cycles of products per block: backward 1.03-1.08x on every
family (causal 32k / 8k, sliding, documents, GQA); dK / dV bitwise equal (same products in the same
order per warpgroup), dQ within fp32 reduce-order noise. SASS: stack 272 -> 296 B, STL 113 -> 115,
the 16 dQ stores now between ``DEPBAR.LE gsb0, 0x1`` and ``0x0``.

Also a per-key-tile cost model (``us per item-slot``: time x SMs / items): ``bandC`` cases are
block-sparse bands of C full 128 x 128 tiles per key tile (no partial tiles; session 20 fitted
~2.56 us per 64-row block and ~15 us per key tile besides its blocks on the H200). Sliding 1024 has
7 full and 2 partial tiles per key tile: against band9, the partial tiles' extra cost; against the
band fit, what its item costs beyond its blocks.

B=1, D=128, bf16; CUDA-event medians of ``backward.prepare`` + ``backward_sm90`` (the same
preparation for both). Usage: python benchmarks/results/session28/ab_bwd_dq_overlap.py
"""
import os
import statistics
import sys

import torch
import triton

sys.path.insert(0, os.getcwd())
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402
from benchmarks.ab import event_times_us, load_kernel_variant  # noqa: E402
from maskattn.kernels import flash_bwd_sm90 as new  # noqa: E402
from maskattn.kernels.backward import prepare  # noqa: E402
from maskattn.kernels.forward import map_strides  # noqa: E402
from maskattn.kernels.tma import ensure_allocator  # noqa: E402

old = load_kernel_variant(".ab/bwd_main.py", "variant_bwd_main")
print("GPU", torch.cuda.get_device_name(), torch.__version__, triton.__version__, flush=True)
ensure_allocator()
ROUNDS = int(os.environ.get("AB_ROUNDS", 5))
CASES = [c.split(":") for c in os.environ.get(
    "CASES", "causal:32768:16:16 sliding:32768:16:16 documents:32768:16:16 causal:8192:16:16 sliding:8192:16:16 "
             "documents:8192:16:16 causal:32768:32:8 band1:32768:16:16 band9:32768:16:16 band36:32768:16:16").split()]


def make_mask(fam, L):
    if fam.startswith("band"):  # C full tiles per key tile, the diagonal one included
        c, n = int(fam[4:]), -(-L // 128)
        i = torch.arange(n)
        return ma.block_sparse((i[:, None] - i[None, :] >= 0) & (i[:, None] - i[None, :] < c), 128, 128)
    return families.mask(fam, L)


for fam, L, hq, hkv in CASES:
    L, hq, hkv = int(L), int(hq), int(hkv)
    g = torch.Generator(device="cuda").manual_seed(0)
    q, do = (torch.randn(1, hq, L, 128, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(2))
    k, v = (torch.randn(1, hkv, L, 128, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(2))
    bm = ma.compile_mask(make_mask(fam, L), L, L, device="cuda")
    if not new.supported(q, bm, 128, None, hkv):
        print(f"{fam} {L}: the portable backward runs this map, nothing to compare", flush=True)
        continue
    out, lse = ma.attention(q, k, v, bm, return_lse=True)
    lse = lse.float().contiguous()
    sb, sh = map_strides(bm)
    results, fns = {}, {}
    for name, mod in (("main", old), ("overlap", new)):
        dk, dv = torch.empty_like(k), torch.empty_like(v)
        dq_acc = torch.empty(1, hq, L, 128, device="cuda", dtype=torch.float32)

        def run(mod=mod, dk=dk, dv=dv, dq_acc=dq_acc):
            (delta, lse_pad, k_clean), _ = prepare(out, do, lse, None, k, -(-L // 64) * 64, dq_acc)
            mod.backward_sm90(q, k_clean, v, do, lse_pad, delta, dk, dv, dq_acc, bm, 128 ** -0.5, 128, 128, sb, sh)
        fns[name] = run
        run()
        results[name] = (dq_acc.clone(), dk, dv)
    torch.cuda.synchronize()
    reps = 5 if L >= 32768 else 20
    times = {name: [] for name in fns}
    for _ in range(ROUNDS):
        for name, fn in fns.items():
            times[name] += event_times_us(fn, reps)
    med = {name: statistics.median(t) for name, t in times.items()}
    same = all(torch.equal(a, b) for a, b in zip(results["main"][1:], results["overlap"][1:]))
    dq = float((results["main"][0] - results["overlap"][0]).abs().max())
    items = hkv * bm.n_k_tiles
    slot = med["main"] * torch.cuda.get_device_properties(0).multi_processor_count / items
    print(f"{fam:10s} {L:6d} {hq}:{hkv} | main {med['main']:.1f} us ({slot:.1f} us per item-slot) | overlap "
          f"{med['main'] / med['overlap']:.3f}x dK/dV {'bitwise equal' if same else 'DIFFER'} dQ max diff {dq:.1e}",
          flush=True)

"""Session 41 (for the next session's call): GPU time of ``real_rows.real_row_map``'s kernel, main
(``.ab/maskattn_main``) against branch ``s41-real-rows-fast`` (this checkout), per decode map:
one-token and four-token causal steps (16-row tiles) and the 64-node tree (128-row tiles), 32k
keys. Kernel time from the profiler (mean over N calls, the map's cached view dropped before each);
the views of both packages compared entry by entry.

Prediction: q=1 13 -> <= 5 us (4 steps of 64 entries, one 16-row read each, against 16 steps of
16 entries reading 16 rows); tree (128-row tiles) ~6 -> ~3 us (4 row reads of 16 on the 64 real
rows a step, the two kept tiles copied afterwards).
"""
import importlib
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.getcwd())
from benchmarks.ab import env_packages, print_setup  # noqa: E402
from benchmarks.bench_inference import tree_parents  # noqa: E402

PKGS = env_packages()
NAMES = list(PKGS)
N = int(os.environ.get("N", "50"))
print_setup("|", " ".join(f"{n}={p.__file__}" for n, p in PKGS.items()))


def kernel_us(fn) -> float:
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(N):
            fn()
        torch.cuda.synchronize()
    ks = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA and "real_row" in e.name]
    return sum(e.device_time_total for e in ks) / N


for label, lq, block_q, tree in (("q=1", 1, 16, False), ("q=4", 4, 16, False), ("tree 64", 64, 128, True)):
    views, cols = {}, []
    for name, pkg in PKGS.items():
        rr = importlib.import_module(f"{name}.kernels.real_rows")
        mask = pkg.tree(tree_parents(64), prefix=32704) if tree else pkg.causal()
        bm = pkg.compile_mask(mask.to("cuda"), lq, 32768, block_q=block_q, device="cuda")

        def fresh(bm=bm, rr=rr):
            bm.__dict__.pop(rr._CACHED, None)
            return rr.real_row_map(bm)

        views[name] = fresh()
        cols.append(f"{name} {kernel_us(fresh):.2f} us")
    a, b = (views[n] for n in NAMES[:2])
    same = all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("full_ptr", "full_idx", "part_ptr", "part_idx"))
    n_part = int(a.part_ptr[-1])
    same = same and torch.equal(a.bitmaps[:n_part], b.bitmaps[:n_part])
    print(f"{label:8s} | " + " | ".join(cols) + f" | views equal: {same} (full {int(a.full_ptr[-1])}, partial {n_part})",
          flush=True)

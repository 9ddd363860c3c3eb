"""Session 44: GPU time of a tree verification step's mask preparation (``compile_mask`` of the
64-node tree on a 32 704-token prefix, 64 query rows, 32k keys, 64-row tiles as there, and the decode
launches' row view, as ``bench_inference.py`` measures it), main before ``PrefixTree``
(``.ab/maskattn_main``) against this checkout, interleaved rounds; the maps compared field by
field.

Prediction: 51 us / 16 launches (session 41) -> ~44 us / 12-13: the prefix and the ancestry as
one interval test (three passes over the 64 x 32768 elements instead of five; the small table
lookups about as many as before).
"""
import importlib
import os
import statistics
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.getcwd())
from benchmarks.ab import env_packages, print_setup  # noqa: E402
from benchmarks.bench_inference import tree_parents  # noqa: E402

PKGS = env_packages()
N, ROUNDS = int(os.environ.get("N", "20")), int(os.environ.get("ROUNDS", "3"))
print_setup("|", " ".join(f"{n}={p.__file__}" for n, p in PKGS.items()))


def step_fn(name, pkg):
    real_row_map = importlib.import_module(f"{name}.kernels.real_rows").real_row_map
    tree = pkg.tree(tree_parents(), prefix=32704).to("cuda")
    return lambda: real_row_map(pkg.compile_mask(tree, 64, 32768, device="cuda", block_q=64))


def kernel_us(fn) -> tuple[float, float]:
    """(GPU time of the kernels per call, launches per call), from the profiler over N calls."""
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(N):
            fn()
        torch.cuda.synchronize()
    ks = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    return sum(e.device_time_total for e in ks) / N, len(ks) / N


fns = {name: step_fn(name, pkg) for name, pkg in PKGS.items()}
maps = {name: fn() for name, fn in fns.items()}
torch.cuda.synchronize()
times = {name: [] for name in fns}
for _ in range(ROUNDS):
    for name, fn in fns.items():
        times[name].append(kernel_us(fn))
for name, t in times.items():
    print(f"{name}: {statistics.median(x for x, _ in t):.1f} us GPU, {t[0][1]:.1f} launches a step "
          f"(rounds: {', '.join(f'{x:.1f}' for x, _ in t)})", flush=True)
a, b = maps.values()
fields = ("full_ptr", "full_idx", "part_ptr", "part_idx")
same = all(torch.equal(getattr(a, f), getattr(b, f)) for f in fields)
n_part = int(a.part_ptr[-1])
print(f"maps equal: {same and torch.equal(a.bitmaps[:n_part], b.bitmaps[:n_part])} "
      f"(full {int(a.full_ptr[-1])}, partial {n_part})", flush=True)

"""Helpers of the same-process kernel A/B scripts (``benchmarks/results/session*/``): a kernel
module loaded from a copy of its file (the committed version, or a variant), the cases from the
environment, package copies side by side, one package's forward or backward on a family mask,
CUDA-event times of repeated launches and their medians over interleaved rounds, host time per call."""
from __future__ import annotations

import importlib
import importlib.util
import os
import statistics
import sys
import time

import torch
import triton


def load_kernel_variant(path: str, name: str):
    """The module in file ``path`` (a copy of a ``maskattn/kernels`` module) loaded as
    ``maskattn.kernels.<name>``, so that its relative imports resolve against the package."""
    spec = importlib.util.spec_from_file_location(f"maskattn.kernels.{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def event_times_us(fn, reps: int) -> list[float]:
    """Times of ``reps`` back-to-back calls of ``fn`` in microseconds, one CUDA-event pair each."""
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for a, b in ev:
        a.record()
        fn()
        b.record()
    torch.cuda.synchronize()
    return [a.elapsed_time(b) * 1e3 for a, b in ev]


def median_rounds(timer, fns: dict, rounds: int) -> dict:
    """{name: median} of the samples ``timer(fn)`` (a list) returns for each callable in ``fns``,
    timed one after the other, all of them before the next round starts, for ``rounds`` rounds
    (so that clock and thermal drift on a power-capped GPU reach every variant alike)."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name] += timer(fn)
    return {name: statistics.median(t) for name, t in times.items()}


def interleaved_medians(fns: dict, rounds: int, reps: int) -> dict:
    """{name: median time in microseconds} of the callables in ``fns``, timed ``reps`` calls at a
    time (CUDA events) in ``rounds`` interleaved rounds (``median_rounds``)."""
    return median_rounds(lambda fn: event_times_us(fn, reps), fns, rounds)


def env_packages(default: str = "maskattn_main maskattn") -> dict:
    """{name: module} of the packages named by ``PKGS`` (else ``default``), imported side by side:
    ``maskattn`` itself or renamed copies of it in ``.ab/`` (``.ab/maskattn_main`` from
    ``git archive main maskattn``; carry ``.ab`` to the GPU machine)."""
    copies = os.path.join(os.getcwd(), ".ab")
    if copies not in sys.path:
        sys.path.insert(0, copies)
    return {name: importlib.import_module(name) for name in os.environ.get("PKGS", default).split()}


def host_us(fn, n: int = 20) -> float:
    """Host time to issue one call of ``fn`` in microseconds, with the GPU held behind a sleep so
    that nothing waits for it (median of 3 runs of ``n`` calls)."""
    runs = []
    for _ in range(3):
        torch.cuda._sleep(int(2e8))
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n * 1e6)
        torch.cuda.synchronize()
    return statistics.median(runs)


def print_setup(*extra) -> None:
    """The run's first log line: GPU, torch and Triton versions, then ``extra``."""
    print("GPU", torch.cuda.get_device_name(), torch.__version__, triton.__version__, *extra, flush=True)


def env_cases(default: str) -> list[tuple[str, int, int]]:
    """``CASES="family:L:D ..."`` from the environment (else ``default``) -> [(family, L, head dim)]."""
    return [(f, int(L), int(d)) for f, L, d in (c.split(":") for c in os.environ.get("CASES", default).split())]


def package_run(pkg, fam: str, L: int, q, k, v, do, backward: bool):
    """A callable that runs package ``pkg`` (``maskattn`` or a renamed copy of it) on
    ``benchmarks.families`` mask ``fam`` at length ``L``, the mask built with ``pkg``'s own classes
    and compiled once: the backward alone (``torch.autograd.grad`` of a kept forward graph, -> the
    (dq, dk, dv) tuple) or the forward alone (no grad, -> ``(out,)``)."""
    from benchmarks import families
    saved, families.ma = families.ma, pkg
    try:
        bm = pkg.compile_mask(families.mask(fam, L), L, L, device=q.device)
    finally:
        families.ma = saved
    if backward:
        out = pkg.attention(q, k, v, bm)
        return lambda: torch.autograd.grad(out, (q, k, v), do, retain_graph=True)

    def forward():
        with torch.no_grad():
            return (pkg.attention(q, k, v, bm),)
    return forward


def max_difference(a, b) -> float:
    """The largest absolute difference between two tuples of tensors, in fp32."""
    return max(float((x.float() - y.float()).abs().max()) for x, y in zip(a, b))


def backward_inputs(L: int, d: int):
    """q, k, v (requiring grad) and grad_out of the A/B backward cases: (1, 16, L, d) bf16, seed 0."""
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v, do = (torch.randn(1, 16, L, d, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(4))
    return q.requires_grad_(), k.requires_grad_(), v.requires_grad_(), do


def backward_on_off(module, cases, rounds: int, name: str = "hopper") -> None:
    """Print, per case ``(family, L, head dim)`` (B=1, H=16, bf16, ``benchmarks.families`` masks), the
    backward alone (``torch.autograd.grad`` through ``maskattn.attention``, the forward's graph kept)
    with kernel module ``module`` switched off (``ENABLED = False``: the portable kernels) and on,
    interleaved (``interleaved_medians``), and the largest gradient difference between the two."""
    import maskattn as ma
    from benchmarks import families
    for fam, L, d in cases:
        q, k, v, do = backward_inputs(L, d)
        bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
        out = ma.attention(q, k, v, bm)
        grads, fns = {}, {}
        for label, enabled in (("portable", False), (name, True)):
            def run(enabled=enabled):
                module.ENABLED = enabled
                return torch.autograd.grad(out, (q, k, v), do, retain_graph=True)
            grads[label] = run()
            fns[label] = run
        torch.cuda.synchronize()
        med = interleaved_medians(fns, rounds, 5 if L >= 32768 else 20)
        diff = max_difference(grads["portable"], grads[name])
        print(f"{fam:10s} {L:6d} D{d:<3d} | portable {med['portable'] / 1e3:.3f} ms | {name} {med[name] / 1e3:.3f} ms "
              f"({med['portable'] / med[name]:.3f}x) | max |grad diff| {diff:.1e}", flush=True)
    module.ENABLED = True

"""Helpers of the same-process kernel A/B scripts (``benchmarks/results/session*/``): a kernel
module loaded from a copy of its file (the committed version, or a variant), CUDA-event
times of repeated launches, and their medians over interleaved rounds."""
from __future__ import annotations

import importlib.util
import statistics
import sys

import torch


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


def interleaved_medians(fns: dict, rounds: int, reps: int) -> dict:
    """{name: median time in microseconds} of the callables in ``fns``, timed ``reps`` calls at a
    time, one after the other, for ``rounds`` rounds (so that clock and thermal drift reach every
    variant alike)."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name] += event_times_us(fn, reps)
    return {name: statistics.median(t) for name, t in times.items()}

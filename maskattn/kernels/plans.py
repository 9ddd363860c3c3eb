"""Recorded launch plans, kept on a BlockMap and replayed by later calls with the same layouts.

A training loop calls ``attention`` with the same map and tensors of the same shapes every
layer and step, and at 8k tokens its host work outlasts the GPU work: on the H200 host an
8k forward+backward took 1.10-1.15 ms of host time against 0.69-0.72 ms of GPU time (sliding,
documents; session 21, ``benchmarks/results/session21/host_breakdown*.log``), most of it
Python between the user's call and the three launches (Triton's per-launch binding 50-250 us
each inside a step, checks, allocations, three elementwise ops). So the first call with a
given layout records what it launched on the map (``ForwardPlan``, ``BackwardPlan``, and
``decode._DecodePlan`` for decoding); later calls allocate their outputs and replay the
launches through Triton's C launcher (``relaunch.Relaunch``).

A plan is found under a key naming everything its launches were specialised on besides the
map: each tensor's shape, strides, dtype and 16-byte alignment (Triton specialises pointers on
it), the device, scale, softcap and the module switches that choose kernels. Only calls whose
tensors reached the kernels as given are recorded (no aligned or padded copies in between).
Nothing is recorded or replayed on the CPU, on Triton releases whose launcher was not checked
(``relaunch.available``), with tuning overrides, or while a CUDA graph is being captured (a
graph must get buffers of its own).
"""
from __future__ import annotations

import torch

from . import relaunch
from .config import OVERRIDES

PLANS_PER_MAP = 8


def layouts(*tensors: torch.Tensor) -> tuple:
    """What a launch is specialised on per tensor: shape, strides, dtype, 16-byte alignment."""
    return tuple((t.shape, t.stride(), t.dtype, t.data_ptr() % 16) for t in tensors)


def capturing(device: torch.device) -> bool:
    """Is a CUDA graph being captured on ``device``'s current stream? Then nothing may be read back
    from the GPU, and buffers made belong to the graph (so they are not kept on a map)."""
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


def replayable(q: torch.Tensor) -> bool:
    """May calls on ``q``'s device record and replay plans now?"""
    return q.is_cuda and not OVERRIDES and relaunch.available() and not capturing(q.device)


def recall(bm, kind: str, key):
    """The plan of ``kind`` recorded on ``bm`` under ``key``, or None (also for ``key`` None)."""
    plans = bm.__dict__.get(kind)
    return plans.get(key) if plans is not None and key is not None else None


def remember(bm, kind: str, key, plan) -> None:
    """Keep ``plan`` on ``bm`` under ``key``; the oldest of ``PLANS_PER_MAP`` makes room."""
    plans = bm.__dict__.setdefault(kind, {})
    if len(plans) >= PLANS_PER_MAP:
        plans.pop(next(iter(plans)))
    plans[key] = plan


class ForwardPlan:
    """A recorded forward on the Hopper kernel: ``plan(q, k, v) -> (out, lse)`` allocates out
    (B, Hq, Lq, D) and lse (B, Hq, Lq) fp32 and replays the launch; with the counter schedule
    (``flash_fwd_sm90.dynamic_schedule``) a zeroed counter is allocated per call too, so calls
    on different streams never share one."""

    def __init__(self, out: torch.Tensor, lse: torch.Tensor, launch: tuple, kernel, counter_slot: int | None):
        compiled, grid, args, constexprs = launch
        self._out, self._lse = (out.shape, out.dtype), lse.shape
        self._device = out.device
        self._counter = counter_slot is not None
        slots = (0, 1, 2, 3, 4) + ((counter_slot,) if self._counter else ())
        self._run = relaunch.Relaunch(kernel, compiled, grid, args, constexprs, {}, slots)

    def __call__(self, q, k, v):
        out = torch.empty(self._out[0], dtype=self._out[1], device=self._device)
        lse = torch.empty(self._lse, dtype=torch.float32, device=self._device)
        if self._counter:
            self._run(q, k, v, out, lse, torch.zeros(1, dtype=torch.int32, device=self._device))
        else:
            self._run(q, k, v, out, lse)
        return out, lse


class BackwardPlan:
    """A recorded one-pass Hopper backward: ``plan(do, q, k, v, out, lse, dlse) -> (dq, dk, dv)``
    allocates the stats, the fp32 dQ accumulator and dK / dV, replays the preparation launch
    (``backward.prepare``) and the backward launch, and casts dQ. ``main``: the backward launch as
    ``flash_bwd_sm90.backward_sm90`` returns it; where it cut key tiles into parts (its ``cut``),
    each replay gets a zeroed accumulator for them and casts it into dK / dV."""

    def __init__(self, prep: tuple, prep_kernel, main: tuple, main_kernel, dq_acc: torch.Tensor,
                 dk: torch.Tensor, q_dtype: torch.dtype, lse_pad: torch.Tensor):
        self._prep = relaunch.Relaunch(prep_kernel, prep[0], prep[1], prep[2], prep[3], {}, tuple(range(9)))
        compiled, grid, args, constexprs, self._cut = main
        slots = tuple(range(9)) + ((self._cut.slot,) if self._cut is not None else ())
        self._main = relaunch.Relaunch(main_kernel, compiled, grid, args, constexprs, {}, slots)
        self._device, self._q_dtype = dq_acc.device, q_dtype
        self._stats = (2,) + tuple(lse_pad.shape)
        self._acc, self._kv = dq_acc.shape, (dk.shape, dk.dtype)

    def __call__(self, do, q, k, v, out, lse, dlse):
        device, (kv_shape, kv_dtype) = self._device, self._kv
        stats = torch.empty(self._stats, dtype=torch.float32, device=device)
        delta, lse_pad = stats[0], stats[1]
        dq_acc = torch.empty(self._acc, dtype=torch.float32, device=device)
        dk = torch.empty(kv_shape, dtype=kv_dtype, device=device)
        dv = torch.empty(kv_shape, dtype=kv_dtype, device=device)
        self._prep(out, do, delta if dlse is None else dlse, lse, delta, lse_pad, dq_acc, k, k)
        if self._cut is None:
            self._main(q, k, v, do, lse_pad, delta, dk, dv, dq_acc)
        else:
            acc = self._cut.accumulator(device)
            self._main(q, k, v, do, lse_pad, delta, dk, dv, dq_acc, acc)
            self._cut.finish(acc, dk, dv)
        return dq_acc.to(self._q_dtype), dk, dv

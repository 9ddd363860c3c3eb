"""Where the host time of an 8k training step goes: the maskattn functions on its path are wrapped
with timers; per step, the time of each and the gaps between them (us, median over 60 steps, GPU
kept ahead by a sleep so that the host never waits). Also: the step with autograd's device
threads off (backward on the calling thread)."""
import os, statistics, sys, time, collections
import torch
sys.path.insert(0, os.getcwd())
import maskattn as ma
from maskattn.kernels import flash_fwd_sm90 as F, flash_bwd_sm90 as Bw, backward as BK, forward as FW, op
from benchmarks import families

T = collections.defaultdict(list)
clock = time.perf_counter


def timed(name, fn):
    def w(*a, **kw):
        t0 = clock()
        try:
            return fn(*a, **kw)
        finally:
            T[name].append((t0, clock()))
    return w


op._gradients = timed("_gradients", op._gradients)
op.attention_backward = timed("attention_backward", op.attention_backward)
Bw.backward_sm90 = timed("backward_sm90", Bw.backward_sm90)
op._forward = timed("_forward", op._forward)
FW.flash_fwd_sm90.sm90_forward = timed("sm90_forward", F.sm90_forward)
fwd, bwd = op._EagerAttention.forward, op._EagerAttention.backward
op._EagerAttention.forward = staticmethod(timed("Function.forward", fwd))
op._EagerAttention.backward = staticmethod(timed("Function.backward", bwd))

for fam in ("sliding", "documents"):
    L = 8192
    bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    q, k, v = (torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    do = torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16)

    for threads in (True, False):
        def step():
            t0 = clock()
            o = ma.attention(q, k, v, bm)
            t1 = clock()
            torch.autograd.grad(o, (q, k, v), do)
            t2 = clock()
            T["attention()"].append((t0, t1))
            T["autograd.grad()"].append((t1, t2))
        with torch.autograd.set_multithreading_enabled(threads):
            for _ in range(5):
                step()
            torch.cuda.synchronize()
            T.clear()
            for rep in range(3):
                torch.cuda._sleep(int(3e8))
                for _ in range(20):
                    step()
                torch.cuda.synchronize()
        med = lambda name: statistics.median((b - a) * 1e6 for a, b in T[name])
        print(f"== {fam} 8k, autograd multithreading {threads}", flush=True)
        for name in T:
            print(f"{med(name):9.1f} us  {name}", flush=True)
        gaps = [(T["Function.backward"][i][0] - T["autograd.grad()"][i][0]) * 1e6 for i in range(len(T["autograd.grad()"]))]
        tails = [(T["autograd.grad()"][i][1] - T["Function.backward"][i][1]) * 1e6 for i in range(len(T["autograd.grad()"]))]
        print(f"{statistics.median(gaps):9.1f} us  grad() start -> Function.backward start", flush=True)
        print(f"{statistics.median(tails):9.1f} us  Function.backward end -> grad() return", flush=True)
        T.clear()

"""8k training step (forward + backward, B=1, H=16, D=128, bf16) with and without replayed launch
plans, in one process, interleaved rounds: do_bench medians (as bench_attention times them) of
fwd+bwd, fwd alone and bwd alone (retained graph), and the host time to issue one fwd+bwd with
the GPU kept ahead by a sleep. Run from a tree without ``plans`` (session 20's) it times that
tree alone ("head")."""
import os, statistics, sys, time
import torch
import triton
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks import families
try:
    from maskattn.kernels import plans
except ImportError:
    plans = None

torch.backends.cuda.matmul.allow_tf32 = False
ROUNDS = int(os.environ.get("AB_ROUNDS", 3))
FAMS = os.environ.get("AB_FAMS", "sliding,documents,causal").split(",")
L = int(os.environ.get("AB_L", 8192))
bench = lambda fn: float(triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median"))  # noqa: E731


def host_us(fn, n=30):
    fn(); torch.cuda.synchronize()
    res = []
    for _ in range(3):
        torch.cuda._sleep(int(2e8))
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        res.append((time.perf_counter() - t0) / n * 1e6)
        torch.cuda.synchronize()
    return statistics.median(res)


real = plans.replayable if plans is not None else None
variants = ["plans", "no plans"] if plans is not None else ["head"]
for fam in FAMS:
    bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(1, 16, L, 128, device="cuda", generator=g, dtype=torch.bfloat16).requires_grad_() for _ in range(3))
    do = torch.randn(1, 16, L, 128, device="cuda", generator=g, dtype=torch.bfloat16)
    fwd = lambda: ma.attention(q, k, v, bm)  # noqa: E731
    step = lambda: torch.autograd.grad(fwd(), (q, k, v), do)  # noqa: E731
    res = {vname: {"fwd+bwd": [], "fwd": [], "bwd": [], "host": []} for vname in variants}
    for r in range(ROUNDS):
        for vname in variants:
            if plans is not None:
                plans.replayable = real if vname == "plans" else (lambda q: False)
            res[vname]["fwd+bwd"].append(bench(step))
            res[vname]["fwd"].append(bench(fwd))
            out = fwd()
            res[vname]["bwd"].append(bench(lambda: torch.autograd.grad(out, (q, k, v), do, retain_graph=True)))
            out = None
            res[vname]["host"].append(host_us(step) / 1e3)
    for vname in variants:
        m = {key: statistics.median(vals) for key, vals in res[vname].items()}
        print(f"{fam} {L}: {vname:9s} fwd+bwd {m['fwd+bwd']:.3f} ms  fwd {m['fwd']:.3f}  bwd {m['bwd']:.3f}  "
              f"host issue per fwd+bwd {m['host']:.3f} ms", flush=True)

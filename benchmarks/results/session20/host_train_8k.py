"""Host time of a training call at 8k (sliding, documents; B=1, H=16, D=128, bf16): wall time per
forward+backward with the GPU idle-waiting, against the GPU time of the same calls (CUDA events),
and a cProfile of the host side (top functions by own time)."""
import cProfile, os, pstats, sys, time
import torch
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks import families

for fam in ("sliding", "documents"):
    L = 8192
    bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    q, k, v = (torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    do = torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16)

    def step():
        out = ma.attention(q, k, v, bm)
        torch.autograd.grad(out, (q, k, v), do)

    for _ in range(10):
        step()
    torch.cuda.synchronize()
    n = 50
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    host = (time.perf_counter() - t0) / n * 1e3
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / n * 1e3
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    # GPU time: the calls queued behind a long sleep so that the host is never the limit
    torch.cuda._sleep(int(2e8))
    a.record()
    for _ in range(n):
        step()
    b.record()
    torch.cuda.synchronize()
    print(f"{fam} 8k fwd+bwd: host issue {host:.3f} ms/call, wall {wall:.3f} ms/call, GPU {a.elapsed_time(b) / n:.3f} ms/call", flush=True)
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(20):
        step()
    pr.disable()
    torch.cuda.synchronize()
    pstats.Stats(pr).sort_stats("tottime").print_stats(25)

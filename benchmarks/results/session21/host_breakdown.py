"""Host time of the pieces of an 8k training call (sliding, documents; B=1, H=16, D=128, bf16).
Each piece runs N times while the GPU sleeps behind it, so the host never waits for the GPU;
the printed number is the median over 5 repeats of host time per call (us)."""
import os, statistics, sys, time
import torch
sys.path.insert(0, os.getcwd())
import maskattn as ma
from maskattn.kernels import flash_fwd_sm90 as F, flash_bwd_sm90 as Bw, backward as BK, forward as FW, relaunch
from maskattn.kernels.forward import map_strides
from maskattn.kernels.tma import ensure_allocator
from benchmarks import families

N = 40


def host_us(fn):
    fn(); torch.cuda.synchronize()
    res = []
    for _ in range(5):
        torch.cuda._sleep(int(3e8))
        t0 = time.perf_counter()
        for _ in range(N):
            fn()
        res.append((time.perf_counter() - t0) / N * 1e6)
        torch.cuda.synchronize()
    return statistics.median(res)


for fam in ("sliding", "documents"):
    L = 8192
    bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    q, k, v = (torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    do = torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16)
    qd, kd, vd = q.detach(), k.detach(), v.detach()
    scale = 128 ** -0.5
    out, lse = FW.attention_forward(qd, kd, vd, bm, scale, None)
    sb, sh = map_strides(bm)
    ensure_allocator()
    rows = {}

    def step():
        o = ma.attention(q, k, v, bm)
        torch.autograd.grad(o, (q, k, v), do)
    rows["A step: attention + autograd.grad"] = step
    rows["B attention (grad on, node built)"] = lambda: ma.attention(q, k, v, bm)
    def nograd():
        with torch.no_grad():
            ma.attention(q, k, v, bm)
    rows["C attention under no_grad"] = nograd
    rows["D attention_forward"] = lambda: FW.attention_forward(qd, kd, vd, bm, scale, None)
    rows["E sm90_forward"] = lambda: F.sm90_forward(qd, kd, vd, out, lse, bm, scale, 128, 128, sb, sh)
    n_items = 16 * bm.n_q_tiles
    grid = (min(n_items, torch.cuda.get_device_properties(0).multi_processor_count),)
    dyn = F.dynamic_schedule(bm, 1)
    sched = torch.zeros(1, dtype=torch.int32, device="cuda") if dyn else None
    def launch_only():
        return F.launch_sm90(grid, qd, kd, vd, out, lse, (lse, lse, lse), bm, scale, 128, 128, sb, sh, bm.n_q_tiles,
                             n_items, 1, packed=False, passes=1 if dyn else 2, thread_release=True, sched=sched)
    rows["F launch_sm90 (Triton JIT run)"] = launch_only
    compiled, args, constexprs = launch_only()
    rep = relaunch.Relaunch(F._attn_fwd_sm90, compiled, grid, args, constexprs, {}, (0, 1, 2, 3, 4))
    rows["F' forward kernel replayed by C launcher"] = lambda: rep(qd, kd, vd, out, lse)
    rows["G attention_backward"] = lambda: BK.attention_backward(do, qd, kd, vd, out, lse, None, bm, scale, None, False)
    delta = torch.empty_like(lse)
    kc = torch.nan_to_num(kd, nan=0.0, posinf=0.0, neginf=0.0)
    dk, dv = torch.empty_like(kd), torch.empty_like(vd)
    rows["H backward_sm90"] = lambda: Bw.backward_sm90(qd, kc, vd, do, lse, delta, dk, dv, bm, scale, 128, 128, sb, sh)
    rows["I delta kernel launch"] = lambda: BK._bwd_delta[(16, 128)](out, do, delta, delta, *out.stride(), *do.stride(), 16, L, 128,
                                                               HAS_DLSE=False, BLOCK_M=64, BLOCK_D=128)
    rows["J1 torch.empty"] = lambda: torch.empty((1, 16, L), dtype=torch.float32, device="cuda")
    rows["J2 torch.zeros dq_acc"] = lambda: torch.zeros((1, 16, L, 128), dtype=torch.float32, device="cuda")
    rows["J3 nan_to_num(k)"] = lambda: torch.nan_to_num(kd, nan=0.0, posinf=0.0, neginf=0.0)
    acc = torch.zeros((1, 16, L, 128), dtype=torch.float32, device="cuda")
    rows["J4 dq cast"] = lambda: acc[..., :128].to(torch.bfloat16)
    rows["J5 padded_stats"] = lambda: Bw.padded_stats(lse)
    rows["J6 supported(fwd)+supported(bwd)"] = lambda: (F.supported(qd, bm, 128, None), Bw.supported(qd, bm, 128, None, 16))
    rows["J7 dynamic_schedule+short_columns"] = lambda: (F.dynamic_schedule(bm, 1), Bw.short_columns(bm, 1))

    class Nop(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, c):
            return torch.empty_like(a), torch.empty((1, 16, L), device="cuda")
        @staticmethod
        def backward(ctx, g, gl):
            return torch.empty_like(g), torch.empty_like(g), torch.empty_like(g)
    def nop_step():
        o, _ = Nop.apply(q, k, v)
        torch.autograd.grad(o, (q, k, v), do)
    rows["K autograd.Function doing nothing + grad"] = nop_step
    print(f"== {fam} 8k (dynamic schedule {dyn}, short columns {Bw.short_columns(bm, 1)})", flush=True)
    for name, fn in rows.items():
        print(f"{host_us(fn):9.1f} us  {name}", flush=True)

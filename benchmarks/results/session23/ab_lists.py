"""Backward work lists, A/B in one process: the persistent Hopper backward with the snake's lists
against the balanced (LPT) lists of ``flash_bwd_sm90.program_lists``: the same compiled kernel,
two maps of the same mask whose recorded plans hold one kind of list each. do_bench medians of
the backward alone (retained graph), interleaved rounds; B=1, H=16 (or GQA 32:8), D=128, bf16.
Also checks that dK / dV are bitwise equal (each key tile is computed whole by one program) and
dQ close (its fp32 adds come in another order)."""
import os, statistics, sys
import torch
import triton
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks import families
from maskattn.kernels import flash_bwd_sm90, work_lists

ROUNDS = int(os.environ.get("AB_ROUNDS", 5))
bench = lambda fn: float(triton.testing.do_bench(fn, warmup=25, rep=150, return_mode="median"))  # noqa: E731
CASES = [("documents", 8192, 16, 16), ("sliding", 8192, 16, 16), ("causal", 8192, 16, 16),
         ("documents", 32768, 16, 16), ("sliding", 32768, 16, 16), ("documents", 8192, 32, 8)]
real = flash_bwd_sm90.program_lists


def snake(bm, batch, kv_heads, group, sb, sh, n_programs):
    return work_lists.snake_lists(batch * kv_heads * bm.n_k_tiles, n_programs, bm.device)


for fam, L, hq, hkv in CASES:
    mask = families.mask(fam, L)
    maps = {"snake": ma.compile_mask(mask, L, L, device="cuda"), "balanced": ma.compile_mask(mask, L, L, device="cuda")}
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(1, hq, L, 128, device="cuda", generator=g, dtype=torch.bfloat16).requires_grad_()
    k, v = (torch.randn(1, hkv, L, 128, device="cuda", generator=g, dtype=torch.bfloat16).requires_grad_() for _ in range(2))
    do = torch.randn(1, hq, L, 128, device="cuda", generator=g, dtype=torch.bfloat16)
    outs, grads = {}, {}
    for name, bm in maps.items():
        flash_bwd_sm90.program_lists = snake if name == "snake" else real
        outs[name] = ma.attention(q, k, v, bm)
        grads[name] = torch.autograd.grad(outs[name], (q, k, v), do, retain_graph=True)  # records the plan
    flash_bwd_sm90.program_lists = real
    same_kv = all(torch.equal(a, b) for a, b in zip(grads["snake"][1:], grads["balanced"][1:]))
    dq_err = float((grads["snake"][0].float() - grads["balanced"][0].float()).abs().max())
    times = {name: [] for name in maps}
    for _ in range(ROUNDS):
        for name in maps:
            out = outs[name]
            times[name].append(bench(lambda: torch.autograd.grad(out, (q, k, v), do, retain_graph=True)))
    m = {name: statistics.median(t) for name, t in times.items()}
    print(f"{fam} {L} {hq}:{hkv}  bwd snake {m['snake']:.4f} ms  balanced {m['balanced']:.4f} ms  "
          f"speed-up {m['snake'] / m['balanced']:.3f}x  dK/dV bitwise equal {same_kv}  max |dQ diff| {dq_err:.2e}  "
          f"rounds snake {[round(t, 4) for t in times['snake']]} balanced {[round(t, 4) for t in times['balanced']]}",
          flush=True)

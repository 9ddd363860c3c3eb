"""Causal 32k fwd+bwd of maskattn alone (the benchmark's 161 ms row looked like an artifact)."""
import torch, maskattn as ma
from triton.testing import do_bench
from benchmarks import families
L = 32768
q, k, v = (torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
bm = ma.compile_mask(families.mask("causal", L), L, L, device="cuda")
do = torch.randn_like(q)
def step():
    out = ma.attention(q, k, v, bm)
    torch.autograd.grad(out, (q, k, v), do)
step(); torch.cuda.synchronize()
for i in range(3):
    print("causal 32k fwd+bwd ms", do_bench(step, warmup=3, rep=500), "max reserved GB", torch.cuda.max_memory_reserved() / 1e9, flush=True)
print("fwd ms", do_bench(lambda: ma.attention(q.detach(), k.detach(), v.detach(), bm)))

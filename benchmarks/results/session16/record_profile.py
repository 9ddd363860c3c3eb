"""Host cost of a decode call that records its launch (the first layer of each decode step: a new
map every step), B=1 and 8 x 16/8 heads x 1 query x 8k keys: per-call host us, then cProfile of
200 such calls (top functions by own time and by cumulative time)."""
import cProfile, io, os, pstats, sys
import torch
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks.decode_host import per_call_us

for B in (1, 8):
    kv = 8192
    q = torch.randn(B, 16, 1, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(B, 8, kv, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    bm = ma.compile_mask(ma.causal(), 1, kv, device="cuda", block_q=16)
    fields = {f: getattr(bm, f) for f in bm.__dataclass_fields__}
    maps = [ma.BlockMap(**fields) for _ in range(2000)]
    it = iter(maps)
    h, w = per_call_us(lambda: ma.attention(q, k, v, next(it), scale=0.0883883), 500)
    print(f"B={B}: recording call host {h:.1f} us, wall {w:.1f} us", flush=True)
    pr = cProfile.Profile(); pr.enable()
    for _ in range(200):
        ma.attention(q, k, v, next(it), scale=0.0883883)
    pr.disable(); torch.cuda.synchronize()
    for order in ("tottime", "cumtime"):
        s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats(order).print_stats(28)
        print(s.getvalue()[-8000:], flush=True)

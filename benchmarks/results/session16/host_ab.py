"""Host us per call, same process: the plug-in's mask function (new key count each call, 2-D
all-ones mask, B=1) and a decode call that records its launch (new map each call), each with this
session's launch paths (row-map kernels through launch_direct, recording through an earlier
map's compiled kernel) and with Triton's JIT launches; then cProfile of the mask function."""
import cProfile, io, os, pstats, sys
import torch
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks.decode_host import per_call_us
import maskattn.integrations.transformers as mt
from maskattn.kernels import relaunch, row_map
from transformers import masking_utils as mu

kv, B = 8192, 1
ams = torch.ones(B, kv + 5000, dtype=torch.bool, device="cuda")
n = [kv]


def mf():
    n[0] += 1
    return mt.mask_function(B, 1, n[0], q_offset=n[0] - 1, kv_offset=0, mask_function=mu.causal_mask_function,
                            attention_mask=ams[:, :n[0]].contiguous(), device="cuda")


def jit_direct(kernel, grid, args, constexprs, options):
    kernel[grid](*args, **constexprs, **options)


q = torch.randn(B, 16, 1, 128, device="cuda", dtype=torch.bfloat16)
k = torch.randn(B, 8, kv, 128, device="cuda", dtype=torch.bfloat16)
v = torch.randn_like(k)
bm = ma.compile_mask(ma.causal(), 1, kv, device="cuda", block_q=16)
fields = {f: getattr(bm, f) for f in bm.__dataclass_fields__}
maps = iter([ma.BlockMap(**fields) for _ in range(6000)])
rec = lambda: ma.attention(q, k, v, next(maps), scale=0.0883883)  # noqa: E731
real_direct, real_recorded = row_map.launch_direct, relaunch.launch_recorded
for rnd in range(2):
    for label, direct in (("launch_direct", real_direct), ("Triton JIT", jit_direct)):
        row_map.launch_direct = direct
        print(f"mask_function, row-map kernels by {label:14s}: host {per_call_us(mf, 400)[0]:6.1f} us", flush=True)
    row_map.launch_direct = real_direct
    real_cached = relaunch._cached
    for label, cached in (("earlier compiled kernel", real_cached), ("Triton JIT", lambda *a: (None, None))):
        relaunch._cached = cached  # no entry: Triton's launch
        print(f"recording decode call via {label:24s}: host {per_call_us(rec, 400)[0]:6.1f} us", flush=True)
    relaunch._cached = real_cached
pr = cProfile.Profile(); pr.enable()
for _ in range(200):
    mf()
pr.disable(); torch.cuda.synchronize()
s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(30)
print(s.getvalue()[-9000:], flush=True)

"""A/B of the one-pass Hopper backward: the committed kernel file (argv[1]) against the working
tree's, same inputs, same process, interleaved; dK/dV compared bitwise (accumulated in registers
in a fixed order), dQ by max difference (fp32 reduce-adds in varying order). B=1, H=16, D=128, bf16."""
import os, sys, statistics
import torch
sys.path.insert(0, os.getcwd())
import maskattn as ma
from benchmarks import families
from maskattn.kernels import flash_bwd_sm90 as new
from maskattn.kernels.forward import map_strides
from maskattn.kernels.tma import ensure_allocator
from benchmarks.ab import event_times_us as timed, load_kernel_variant

old = load_kernel_variant(sys.argv[1], "old_flash_bwd_sm90")
print("GPU", torch.cuda.get_device_name(), torch.__version__, flush=True)
ensure_allocator()


for fam, L in (("sliding", 8192), ("causal", 8192), ("sliding", 32768), ("documents", 32768), ("causal", 32768)):
    bm = ma.compile_mask(families.mask(fam, L), L, L, device="cuda")
    q, k, v, do = (torch.randn(1, 16, L, 128, device="cuda", dtype=torch.bfloat16) for _ in range(4))
    out, lse = ma.attention(q, k, v, bm, return_lse=True)
    delta = (out.float() * do.float()).sum(-1)
    sb, sh = map_strides(bm)
    res, fns = {}, {}
    for name, mod in (("old", old), ("new", new)):
        dk, dv = torch.empty_like(k), torch.empty_like(v)
        fns[name] = (lambda mod=mod, dk=dk, dv=dv: mod.backward_sm90(q, k, v, do, lse, delta, dk, dv, bm, 128 ** -0.5,
                                                                     128, 128, sb, sh))
        res[name] = (fns[name](), dk, dv)
    reps = 5 if L >= 32768 else 20
    t = {n: [] for n in fns}
    for _ in range(4):
        for n, fn in fns.items():
            t[n] += timed(fn, reps)
    med = {n: statistics.median(x) for n, x in t.items()}
    same_kv = torch.equal(res["old"][1], res["new"][1]) and torch.equal(res["old"][2], res["new"][2])
    dq = (res["old"][0].float() - res["new"][0].float()).abs().max().item()
    print(f"{fam:10s} {L:6d}: old {med['old']:9.1f} us  new {med['new']:9.1f} us  new/old speed "
          f"{med['old'] / med['new']:.3f}x | dK, dV bitwise equal {same_kv}, max |dQ diff| {dq:.2e}", flush=True)

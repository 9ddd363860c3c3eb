# Runs at commit 2fb1eb7, which still has maskattn/kernels/flash_fwd_sm90.py (removed after it).
"""Dev sweep: Gluon sm90 forward (block shapes) vs the portable kernel and SDPA, same process."""
import sys, time, json
import torch, triton
from triton.testing import do_bench
import maskattn as ma
from maskattn.kernels import flash_fwd_sm90 as sm90
from maskattn.kernels.config import RESOURCES
from benchmarks import families
import torch.nn.functional as F

print(torch.__version__, triton.__version__, torch.cuda.get_device_name())
H, D = 16, 128
res = {}
def bench(fn):
    fn(); torch.cuda.synchronize()
    return do_bench(fn, warmup=50, rep=300)

cases = [("causal", 8192), ("causal", 32768), ("sliding", 8192), ("sliding", 32768), ("documents", 8192),
         ("documents", 32768), ("longformer", 32768), ("tree", 8192), ("tree", 32768)]
if len(sys.argv) > 1 and sys.argv[1] == "quick":
    cases = [("causal", 8192), ("causal", 32768), ("documents", 32768)]
configs = [(128, 128), (64, 64)]
for fam, L in cases:
    q, k, v = (torch.randn(1, H, L, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    mask = families.mask(fam, L).to("cuda")
    bm = ma.compile_mask(mask, L, L, device="cuda")
    flops = 4 * D * H * int(bm.num_allowed.sum())
    row = {}
    sm90.ENABLED = False
    ref = ma.attention(q, k, v, bm)
    row["portable"] = bench(lambda: ma.attention(q, k, v, bm))
    sm90.ENABLED = True
    for cfg in configs:
        sm90.SM90_BLOCKS[128] = cfg
        try:
            out = ma.attention(q, k, v, bm)
            err = (out.float() - ref.float()).abs().max().item()
            row[f"sm90 {cfg}"] = bench(lambda: ma.attention(q, k, v, bm))
            row[f"err {cfg}"] = err
        except Exception as e:  # report and go on
            row[f"sm90 {cfg}"] = f"ERROR {type(e).__name__}: {str(e)[:300]}"
    sm90.SM90_BLOCKS[128] = (128, 128)
    if fam == "causal":
        row["sdpa"] = bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    res[f"{fam} {L}"] = row
    print(fam, L, {kk: (f"{vv:.3f}" if isinstance(vv, float) and not kk.startswith("err") else vv) for kk, vv in row.items()},
          "TF/s portable %.0f" % (flops / row["portable"] * 1e-9), flush=True)
    del q, k, v
json.dump(res, open(sys.argv[2] if len(sys.argv) > 2 else "/tmp/sweep.json", "w"), indent=1)

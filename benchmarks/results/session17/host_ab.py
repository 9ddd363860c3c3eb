"""Host us per call of the two per-step costs of a dynamic-cache decode step, for the package
in the directory given (``--pkg``: this tree, or a copy of the previous commit) so that two
versions can be run in alternation: the plug-in's mask function (new key count each call, 2-D
all-ones mask) and a decode call that records its launch (new map each call), with
transformers' sdpa_mask and SDPA's decode call as yardsticks of the host's speed."""
import argparse, os, sys
ap = argparse.ArgumentParser()
ap.add_argument("--pkg", default=os.getcwd())
ap.add_argument("--label", default="new")
a = ap.parse_args()
sys.path.insert(0, a.pkg)
import torch
import torch.nn.functional as F
import maskattn as ma
import maskattn.integrations.transformers as mt
from transformers import masking_utils as mu
sys.path.insert(1, os.getcwd())
from benchmarks.decode_host import per_call_us

assert ma.__file__.startswith(a.pkg), ma.__file__
for B in (1, 8):
    kv = 8192
    ams = torch.ones(B, kv + 6000, dtype=torch.bool, device="cuda")
    n = [kv]

    def mf():
        n[0] += 1
        return mt.mask_function(B, 1, n[0], q_offset=n[0] - 1, kv_offset=0, mask_function=mu.causal_mask_function,
                                attention_mask=ams[:, :n[0]], device="cuda")
    n3 = [kv]

    def sdm():
        n3[0] += 1
        return mu.sdpa_mask(B, 1, n3[0], q_offset=n3[0] - 1, kv_offset=0, mask_function=mu.causal_mask_function,
                            attention_mask=ams[:, :n3[0]], device="cuda")
    q = torch.randn(B, 16, 1, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(B, 8, kv, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    bm = ma.compile_mask(ma.causal(), 1, kv, device="cuda", block_q=16)
    fields = {f: getattr(bm, f) for f in bm.__dataclass_fields__}
    maps = iter([ma.BlockMap(**fields) for _ in range(3000)])
    rec = lambda: ma.attention(q, k, v, next(maps), scale=0.0883883)  # noqa: E731
    sd = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)  # noqa: E731
    for name, fn in (("mask_function", mf), ("sdpa_mask", sdm), ("recording call", rec), ("sdpa call", sd)):
        print(f"{a.label} B={B} {name:15s} host {per_call_us(fn, 400)[0]:7.1f} us", flush=True)

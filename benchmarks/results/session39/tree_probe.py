"""Session 39: where tree verification's time goes (issue 10: 0.400 ms against a 0.179 ms floor).

Times the split-KV Hopper path (``flash_decode_sm90``) in one process on tree-verification shapes
(bf16, D=128, Hq=32, Hkv=8, 32k keys) with the split count forced (``decode.num_splits``
replaced), and prints each case's time, its rate on the tensor cores and the rate at which it
would stream K and V if every row block read them from HBM.

    python benchmarks/results/session39/tree_probe.py            # the table
    PKGS="maskattn_main maskattn" python ...                     # packages side by side (.ab/)
    python benchmarks/results/session39/tree_probe.py --once A   # one case, a few runs (for ncu)
"""
import os
import sys

sys.path.insert(0, os.getcwd())
import torch  # noqa: E402
import triton.testing  # noqa: E402

sys.path.insert(0, os.path.join(os.getcwd(), ".ab"))
import importlib  # noqa: E402

from benchmarks.bench_inference import tree_parents  # noqa: E402

HQ, HKV, D, LK = 32, 8, 128, 32768
CASES = {"A": (4, 64, 2), "A1": (4, 64, 1), "A4": (4, 64, 4), "B": (4, 32, 4), "B2": (4, 32, 2),
         "C": (8, 32, 2)}  # name: (batch, tree nodes, splits)


def case(pkg, batch, nodes, splits):
    """The call of one case with package ``pkg`` (``maskattn`` or a copy in ``.ab/``); the split
    count is set on every call (a call whose plan was not recorded reads it again)."""
    ma = importlib.import_module(pkg)
    decode = importlib.import_module(pkg + ".kernels.decode")
    mask = ma.tree(tree_parents(nodes), prefix=LK - nodes)
    torch.manual_seed(0)  # the same inputs for every package
    q = torch.randn(batch, HQ, nodes, D, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(batch, HKV, LK, D, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    bm = ma.compile_mask(mask.to("cuda"), nodes, LK, device="cuda")

    def run():
        decode.num_splits = lambda *args: splits
        return ma.attention(q, k, v, bm)
    return run


if len(sys.argv) > 2 and sys.argv[1] == "--once":
    fn = case("maskattn", *CASES[sys.argv[2]])
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    sys.exit()
print(f"GPU {torch.cuda.get_device_name()} torch {torch.__version__} triton {triton.__version__}")
PKGS = os.environ.get("PKGS", "maskattn").split()
names = os.environ.get("CASES", " ".join(CASES)).split()
fns = {}
for name in names:
    for pkg in PKGS:
        fns[name, pkg] = case(pkg, *CASES[name])
        out = fns[name, pkg]()  # compiled, its plan recorded
        if pkg == PKGS[0]:
            first = out.float()
        else:
            print(f"{name}: {pkg} against {PKGS[0]}: max |out difference| {(out.float() - first).abs().max().item():.1e}")
times = {key: [] for key in fns}
for _ in range(int(os.environ.get("ROUNDS", "3"))):  # interleaved rounds: drift hits every variant alike
    for key, fn in fns.items():
        times[key].append(triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median"))
print("| case | B | nodes | splits | package | ms | TFLOP/s | K/V once GB/s | K/V per row block GB/s |")
print("|---|---|---|---|---|---|---|---|---|")
for (name, pkg), ts in times.items():
    batch, nodes, splits = CASES[name]
    ms = sorted(ts)[len(ts) // 2]
    flops = 4.0 * batch * HQ * nodes * LK * D
    kv = 2.0 * batch * HKV * LK * D * 2
    blocks = -(-(HQ // HKV * nodes) // 128)
    print(f"| {name} | {batch} | {nodes} | {splits} | {pkg} | {ms:.3f} | {flops / ms / 1e9:.0f} | "
          f"{kv / ms / 1e6:.0f} | {blocks * kv / ms / 1e6:.0f} |")

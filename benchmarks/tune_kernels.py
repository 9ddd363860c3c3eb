"""Kernel variant sweep on the GPU: forward grid / block configs and backward configs.

Every variant is checked against the deterministic reference path's output in the same
process before it is timed (a variant that compiles but computes something else is
reported, never chosen). Times are ``do_bench`` medians; the score of a variant is the
geometric mean of its time over the cases, relative to the current default. Writes a log
and ``tune_kernels.json`` (best config per kernel) into ``--out``.

    PYTHONPATH=. python benchmarks/tune_kernels.py --out /tmp/tune [--decode | --decode-splits | --two-kernel --head-dim 256]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import maskattn as ma  # noqa: E402
from benchmarks import families  # noqa: E402
from maskattn.kernels import config  # noqa: E402

CASES = [("causal", 8192), ("causal", 32768), ("sliding", 32768), ("documents", 32768), ("tree", 8192)]

FWD = [dict(BLOCK_M=m, BLOCK_N=n, num_warps=w, num_stages=s)
       for (m, n, w, s) in [(128, 128, 8, 2), (128, 128, 8, 3), (128, 64, 8, 2), (128, 64, 4, 3)]]
# head dim <= 128: the current pair first, then larger key blocks (8 warps) and larger dQ row blocks
TWO_KERNEL_D128 = [(dict(BLOCK_M=m1, BLOCK_N=n1, num_warps=w1, num_stages=s1),
                    dict(BLOCK_M=m2, BLOCK_N=n2, num_warps=w2, num_stages=s2))
                   for (m1, n1, w1, s1), (m2, n2, w2, s2) in [
                       ((64, 64, 4, 3), (64, 64, 4, 3)), ((64, 128, 8, 2), (64, 64, 4, 3)),
                       ((32, 128, 8, 2), (64, 64, 4, 3)), ((64, 64, 4, 3), (128, 64, 8, 2)),
                       ((64, 64, 4, 3), (128, 64, 4, 2)), ((64, 128, 8, 2), (128, 64, 8, 2)),
                       ((64, 64, 4, 2), (64, 64, 4, 2)), ((32, 64, 4, 3), (64, 32, 4, 3))]]
# one warpgroup per program, two or three programs per SM (their phases interleave on the SM)
FWD_WIDE = [dict(BLOCK_M=m, BLOCK_N=n, num_warps=w, num_stages=s)
            for (m, n, w, s) in [(128, 64, 4, 3), (128, 64, 4, 2), (128, 64, 4, 4), (64, 128, 4, 2), (64, 128, 4, 3),
                                 (64, 64, 4, 3), (128, 32, 4, 3), (128, 128, 8, 2)]]



DECODE = [dict(BLOCK_M=m, BLOCK_N=n, num_warps=w, num_stages=st, **({"maxnreg": r} if r else {}))
          # BLOCK_M 0: sized from the packed rows (<= 128); maxnreg: a register cap (None: the compiler's)
          for m, n, w, st, r in [(0, 64, 4, 3, None), (0, 64, 4, 3, 128), (0, 64, 4, 2, 128), (0, 64, 4, 4, 128),
                                 (0, 128, 4, 2, 128)]]
# the two-kernel backward (dK/dV then dQ) for large head dims: (dkdv config, dq config)
TWO_KERNEL = [(dict(BLOCK_M=m1, BLOCK_N=n1, num_warps=w1, num_stages=s1), dict(BLOCK_M=m2, BLOCK_N=n2, num_warps=w2,
                                                                               num_stages=s2))
              for (m1, n1, w1, s1), (m2, n2, w2, s2) in [((32, 32, 4, 2), (64, 32, 4, 2)), ((64, 64, 8, 1), (64, 64, 8, 1)),
                                                         ((32, 64, 4, 1), (64, 32, 4, 1)), ((64, 32, 4, 1), (32, 64, 4, 1)),
                                                         ((32, 64, 8, 2), (64, 32, 8, 2))]]


def sweep_decode(f, bench):
    """Split-KV decode configs on the standard inference shapes (benchmarks/bench_inference.py)."""
    from benchmarks.bench_inference import HKV, HQ, cases
    data = []
    for label, B, lq, lk, mask in cases():
        if lq > 64:
            continue
        q = torch.randn(B, HQ, lq, 128, device="cuda", dtype=torch.bfloat16)
        k, v = (torch.randn(B, HKV, lk, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2))
        ref = ma.attention(q, k, v, ma.compile_mask(mask.to("cuda"), lq, lk, device="cuda"))
        data.append((label, q, k, v, mask, ref))
    for cfg in DECODE:
        times = []
        for label, q, k, v, mask, ref in data:
            rows = min(256, max(16, 1 << (HQ // HKV * q.shape[2] - 1).bit_length()))
            config.OVERRIDES["decode"] = dict(cfg, BLOCK_M=min(rows, cfg["BLOCK_M"] or 128))
            # a fresh map per config: a map replays the first decode launch it recorded
            bm = ma.compile_mask(mask.to("cuda"), q.shape[2], k.shape[2], device="cuda")
            assert float((ma.attention(q, k, v, bm) - ref).abs().max()) < 2e-2
            times.append(bench(lambda: ma.attention(q, k, v, bm)))
        log(f, f"  decode {cfg}: " + " ".join(f"{lab} {t:.3f}" for (lab, *_), t in zip(data, times))
            + f" | {config.RESOURCES.get('_decode_split')}")
    config.OVERRIDES.clear()


def sweep_decode_splits(f, bench):
    """Split counts of the split-KV decode on the standard inference shapes, default config:
    how the number of programs (units x splits, against SMs x programs per SM) moves the time."""
    from benchmarks.bench_inference import HKV, HQ, cases
    from maskattn.kernels import decode
    chosen = decode.num_splits
    for label, B, lq, lk, mask in cases():
        if lq > 64:
            continue
        q = torch.randn(B, HQ, lq, 128, device="cuda", dtype=torch.bfloat16)
        k, v = (torch.randn(B, HKV, lk, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2))
        # a map records its first decode launch and replays it (``decode._DecodePlan``): each split
        # count gets a map of its own, so that its launch is the one replayed
        def fresh_map():
            return ma.compile_mask(mask.to("cuda"), lq, lk, device="cuda")
        default = []
        decode.num_splits = lambda *a: default.append(chosen(*a)) or default[-1]
        ref = ma.attention(q, k, v, fresh_map())
        row = []
        for s in (1, 2, 3, 4, 5, 6, 8, 9, 12, 16, 24, 32):
            decode.num_splits = lambda *a, s=s: s
            bm = fresh_map()
            assert float((ma.attention(q, k, v, bm) - ref).abs().max()) < 2e-2
            row.append(f"{s}:{bench(lambda: ma.attention(q, k, v, bm)):.3f}")
        log(f, f"  splits {label} (default {default[0]}): " + " ".join(row)
            + f" | {config.RESOURCES.get('_decode_split')}")
    decode.num_splits = chosen


def sweep_two_kernel(f, bench, data, pairs):
    """dK/dV + dQ config pairs of the deterministic backward (fwd+bwd timed)."""
    for dkdv, dq in pairs:
        config.OVERRIDES.clear()
        config.OVERRIDES.update(dkdv=dkdv, dq=dq)
        times = []
        try:
            for (q, k, v, do, bm), ref in data:
                qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))
                fn = lambda: torch.autograd.grad(ma.attention(qq, kk, vv, bm, deterministic=True), (qq, kk, vv), do)  # noqa: E731
                got = fn()
                diff = max(float((a.float() - b.float()).abs().max()) / max(1.0, float(b.abs().max()))
                           for a, b in zip(got, ref[1]))
                assert diff < 2e-2, f"wrong result {diff:.3e}"
                times.append(bench(fn))
            log(f, f"  two-kernel dkdv {dkdv} dq {dq}: " + " ".join(f"{t:.3f}" for t in times)
                + f" | {config.RESOURCES}")
        except Exception as e:  # noqa: BLE001
            log(f, f"  two-kernel dkdv {dkdv} dq {dq}: FAILED {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    config.OVERRIDES.clear()


def log(f, msg):
    print(msg, flush=True)
    f.write(msg + "\n")
    f.flush()


def inputs(name, L, D, dev="cuda"):
    g = torch.Generator(device=dev).manual_seed(0)
    q, k, v, do = (torch.randn(1, 16, L, D, device=dev, generator=g, dtype=torch.bfloat16) for _ in range(4))
    bm = ma.compile_mask(families.mask(name, L).to(dev), L, L, device=dev)
    return q, k, v, do, bm


def sweep(kind, variants, data, f, bench):
    """Check and time each variant on every case; returns [(score, cfg, times)]."""
    results = []
    base = None
    for cfg in variants:
        config.OVERRIDES.clear()
        config.OVERRIDES[kind] = cfg
        times, err = [], None
        try:
            for (q, k, v, do, bm), ref in data:
                if kind == "fwd":
                    fn = lambda: ma.attention(q, k, v, bm)  # noqa: E731
                    out = fn()
                    diff = float((out - ref[0]).abs().max())
                else:
                    qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))
                    fn = lambda: torch.autograd.grad(ma.attention(qq, kk, vv, bm, deterministic=False),  # noqa: E731
                                                     (qq, kk, vv), do)
                    got = fn()
                    diff = max(float((a.float() - b.float()).abs().max()) / max(1.0, float(b.abs().max()))
                               for a, b in zip(got, ref[1]))
                if not diff < 2e-2:
                    raise AssertionError(f"wrong result: max diff {diff:.3e}")
                times.append(bench(fn))
        except Exception as e:  # a variant that does not compile or is wrong is reported, not chosen
            err = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
        if err:
            log(f, f"  {kind} {cfg}: FAILED {err}")
            continue
        if base is None:
            base = times
        score = math.exp(sum(math.log(t / b) for t, b in zip(times, base)) / len(times))
        results.append((score, cfg, times))
        log(f, f"  {kind} {cfg}: score {score:.3f} | " + " ".join(f"{t:.3f}" for t in times)
            + f" | regs/spills/smem {config.RESOURCES}")
    config.OVERRIDES.clear()
    return sorted(results, key=lambda r: r[0])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="/tmp/tune")
    p.add_argument("--kernels", nargs="*", default=["fwd"], help="fwd (backward configs: --two-kernel)")
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--decode", action="store_true", help="only the split-KV decode sweep")
    p.add_argument("--decode-splits", action="store_true", help="only the split-count sweep of the decode")
    p.add_argument("--two-kernel", action="store_true", help="only the two-kernel backward sweep")
    p.add_argument("--cases", nargs="*", default=None, help="family@L pairs, e.g. causal@8192")
    p.add_argument("--fwd-wide", action="store_true", help="forward sweep over the wider 4-warp config list")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import triton
    import triton.testing
    bench = lambda fn: float(triton.testing.do_bench(fn, warmup=10, rep=40, return_mode="median"))  # noqa: E731
    f = open(os.path.join(args.out, "tune_kernels.log"), "a")
    log(f, f"tune_kernels on {torch.cuda.get_device_name()} torch {torch.__version__} triton {triton.__version__} "
           f"D={args.head_dim} cases={CASES}")
    if args.decode:
        sweep_decode(f, bench)
        return
    if args.decode_splits:
        sweep_decode_splits(f, bench)
        return
    cases = [(c.split("@")[0], int(c.split("@")[1])) for c in args.cases] if args.cases else CASES
    data = []
    for name, L in cases:
        q, k, v, do, bm = inputs(name, L, args.head_dim)
        qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))
        out = ma.attention(qq, kk, vv, bm, deterministic=True)
        grads = torch.autograd.grad(out, (qq, kk, vv), do)
        data.append(((q, k, v, do, bm), (out.detach(), grads)))
        det = bench(lambda: torch.autograd.grad(ma.attention(qq, kk, vv, bm, deterministic=True), (qq, kk, vv), do))
        log(f, f"  deterministic fwd+bwd {name}@{L}: {det:.3f} ms")
    if args.two_kernel:
        sweep_two_kernel(f, bench, data, TWO_KERNEL if args.head_dim > 128 else TWO_KERNEL_D128)
        return
    best = {}
    if args.fwd_wide:
        sweep("fwd", FWD_WIDE, data, f, bench)
        return
    for kind in args.kernels:
        t0 = time.time()
        res = sweep(kind, FWD, data, f, bench)
        if res:
            best[kind] = res[0][1]
            log(f, f"best {kind}: {res[0][1]} score {res[0][0]:.3f} ({time.time() - t0:.0f} s)")
    json.dump(best, open(os.path.join(args.out, "tune_kernels.json"), "w"), indent=1)


if __name__ == "__main__":
    main()

"""The main job: on a GPU, the benchmark tables; on a CPU-only machine, a real but small
run (compile the five standard masks at 32k, check attention against the dense reference
through the block-sparse CPU path) and the compile benchmark, then a note that speed
needs a GPU.

    PYTHONPATH=. python -m benchmarks.main [--quick]
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time

import torch

import maskattn as ma
from benchmarks import families


def cpu_demo() -> None:
    L = 32768
    for name in families.FAMILIES:
        t0 = time.perf_counter()
        bm = ma.compile_mask(families.mask(name, L), L, L)
        print(f"{name:10s} {bm}  [{(time.perf_counter() - t0) * 1e3:.0f} ms on CPU]")
    print(ma.compile_mask(families.mask("documents", 4096), 4096, 4096).to_string(max_width=32))
    q, k, v = (torch.randn(1, 4, 700, 64) for _ in range(3))
    for name in families.FAMILIES:
        mask = families.mask(name, 700)
        out = ma.attention(q, k, v, mask)
        ref, _ = ma.reference.attention(q, k, v, mask)
        print(f"attention({name}) on CPU vs float64 reference: max error {(out.double() - ref).abs().max():.2e}")


def main() -> None:
    quick = "--quick" in sys.argv
    here = sys.executable
    if torch.cuda.is_available():
        subprocess.run([here, "benchmarks/bench_compile.py", "--device", "cuda"] + (["--quick"] if quick else []), check=True)
        subprocess.run([here, "benchmarks/bench_attention.py"] + (["--quick"] if quick else []), check=True)
        return
    cpu_demo()
    out = tempfile.mkdtemp(prefix="maskattn_compile_")  # keep the committed results untouched
    subprocess.run([here, "benchmarks/bench_compile.py", "--device", "cpu", "--quick", "--methods",
                    "maskattn,flex_compiled", "--out", out], check=True)
    print("\nNo CUDA GPU here: the kernels' speed (benchmarks/bench_attention.py) needs a GPU. "
          "Results measured on an H100 are in benchmarks/results/ and the README.")


if __name__ == "__main__":
    main()

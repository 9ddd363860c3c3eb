"""Compile a Hopper kernel (the forward ``kernels/flash_fwd_sm90.py`` or the backward
``kernels/flash_bwd_sm90.py``, ``flash_bwd_sm90_wide.py`` above head dim 128) for sm_90a without a
GPU and report what the compiler made of it: registers, shared memory, spills (stack, local loads
and stores), and counts of the SASS instructions that matter for its schedule (warpgroup
``bar.sync``s, mbarrier arrives, wgmma, exp2). Costs no device time: run it on the CPU machine
with Triton 3.6 (the Gluon release the kernels were checked with; ``config.gluon_tested``) in a
separate environment, e.g.

    python3 -m venv /tmp/t36 && /tmp/t36/bin/pip install triton==3.6.0 torch==2.13.0 numpy scipy
    /tmp/t36/bin/python benchmarks/sass_sm90.py --passes 2 --thread-release --sass /tmp/fwd.sass
    /tmp/t36/bin/python benchmarks/sass_sm90.py --kernel bwd --sass /tmp/bwd.sass
    /tmp/t36/bin/python benchmarks/sass_sm90.py --packed --loops  # the block loops' instruction mix
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402

from maskattn.kernels import flash_bwd_sm90 as bwd  # noqa: E402
from maskattn.kernels import flash_bwd_sm90_wide as bwd_wide  # noqa: E402
from maskattn.kernels import flash_fwd_sm90 as fwd  # noqa: E402
from maskattn.kernels.sm90_common import HAVE_GLUON, smem_layout  # noqa: E402

COUNTED = ("BAR.SYNC.DEFER_BLOCKING", "SYNCS.ARRIVE.TRANS64.A1T0", "ARRIVES.LDGSTSBAR.64.ARVCNT",
           "SYNCS.PHASECHK.TRANS64.TRYWAIT", "HGMMA.64x256x16.F32.BF16", "HGMMA.64x128x16.F32.BF16",
           "HGMMA.64x64x16.F32.BF16", "HGMMA.64x32x16.F32.BF16", "MUFU.EX2", "LDL", "STL", "LDL.64", "STL.64",
           "LDL.128", "STL.128")
_POINTERS = {"Q": "*bf16", "K": "*bf16", "V": "*bf16", "O": "*bf16", "LSE": "*fp32", "ACC": "*fp32", "M": "*fp32",
             "L": "*fp32", "FULL_PTR": "*i32", "FULL_IDX": "*i32", "PART_PTR": "*i32", "PART_IDX": "*i32",
             "BITMAPS": "*i32", "Q_ORDER": "*i32", "SCHED": "*i32", "PROG_PTR": "*i32", "PROG_ITEMS": "*i32",
             "scale": "fp32"}


def compile_forward(passes: int, packed: bool, thread_release: bool, schedule: str, head_dim: int = 128):
    """The compiled kernel for bf16, ``head_dim`` (as ``launch_sm90`` configures it), 128 x 128 tiles."""
    from triton.experimental.gluon._runtime import GluonASTSource
    block_d, block_n, stages = fwd.head_config(head_dim, 128)
    constexprs = dict(Q_SMEM=smem_layout((1, 1, 64, block_d), torch.bfloat16),
                      KV_SMEM=smem_layout((1, 1, block_n, block_d), torch.bfloat16), TILE_Q=128, TILE_K=128,
                      BLOCK_N=block_n, BLOCK_D=block_d, NUM_STAGES=stages, SCALE_SIGN=1,
                      CONSUMER_REGS=fwd._CONSUMER_REGS, PACKED=packed, PASSES=passes, THREAD_RELEASE=thread_release,
                      SCHEDULE=schedule)
    signature = {n: "constexpr" if n in constexprs else _POINTERS.get(n, "i32") for n in fwd._attn_fwd_sm90.arg_names}
    source = GluonASTSource(fwd._attn_fwd_sm90, signature, constexprs)
    options = dict(num_warps=4, maxnreg=(2 * fwd._CONSUMER_REGS + fwd._PRODUCER_REGS) // 3)
    return triton.compile(source, target=GPUTarget("cuda", 90, 128), options=options)


def compile_backward(head_dim: int = 128, split: bool = False):
    """The compiled one-pass backward for bf16, 128 x 128 tiles: ``flash_bwd_sm90`` for ``head_dim`` in its
    ``HEAD_DIMS`` (``split``: key tiles cut into parts, ``split_columns``), ``flash_bwd_sm90_wide`` above 128."""
    from triton.experimental.gluon._runtime import GluonASTSource
    wide = head_dim > 128
    module = bwd_wide if wide else bwd
    constexprs = dict(SMEM=smem_layout((1, 1, 64, bwd_wide.BLOCK_D if wide else head_dim), torch.bfloat16),
                      DS_SMEM=smem_layout((64, 64), torch.bfloat16), STAT_SMEM=bwd._stat_layout(), TILE_Q=128,
                      TILE_K=128, BLOCK_D=bwd_wide.BLOCK_D if wide else head_dim, NUM_STAGES=module.STAGES,
                      CONSUMER_REGS=module._CONSUMER_REGS)
    constexprs["DQ_SMEM"] = bwd_wide._dq_layout() if wide else bwd._dq_layout(head_dim)
    if not wide:
        constexprs["SPLIT"] = split
    kernel = bwd_wide._attn_bwd_wide if wide else bwd._attn_bwd_sm90
    pointers = dict(Q="*bf16", K="*bf16", V="*bf16", DO="*bf16", LSE="*fp32", DELTA="*fp32", DK="*bf16",
                    DV="*bf16", DQA="*fp32", DKV_ACC="*fp32", scale="fp32")
    names = kernel.arg_names
    # the map's and the lists' int32 arrays (and the cut tiles' accumulator) follow the tensors
    n_pointers = names.index("DKV_ACC" if "DKV_ACC" in names else "PROG_ITEMS") + 1
    signature = {n: "constexpr" if n in constexprs else pointers.get(n, "*i32" if i < n_pointers else "i32")
                 for i, n in enumerate(names)}
    source = GluonASTSource(kernel, signature, constexprs)
    options = dict(num_warps=4, maxnreg=(2 * module._CONSUMER_REGS + module._PRODUCER_REGS) // 3)
    return triton.compile(source, target=GPUTarget("cuda", 90, 128), options=options)


_INSTRUCTION = re.compile(r"^\s+/\*([0-9a-f]+)\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Za-z0-9_.]+)([^;]*);", re.M)


def block_loops(sass: str) -> list[tuple[int, int, collections.Counter]]:
    """The innermost loops that issue wgmma (a kernel's key- or query-block loops): (first address,
    last address, base opcodes counted) for each loop closed by a backward branch that holds an
    HGMMA, no EXIT and no smaller such loop."""
    ins = [(int(a, 16), op, rest) for a, op, rest in _INSTRUCTION.findall(sass)]
    loops = set()
    for addr, op, rest in ins:
        target = re.search(r"0x([0-9a-f]+)", rest) if op.startswith("BRA") else None
        if target and int(target.group(1), 16) <= addr:
            loops.add((int(target.group(1), 16), addr))
    # the mbarrier waits' retry stubs sit after the kernel's EXIT and branch back into it: no loops
    with_mma = [(lo, hi) for lo, hi in loops
                if any(lo <= a <= hi and op.startswith("HGMMA") for a, op, _ in ins)
                and not any(lo <= a <= hi and op == "EXIT" for a, op, _ in ins)]
    inner = [(lo, hi) for lo, hi in with_mma
             if not any((lo, hi) != (l2, h2) and lo <= l2 and h2 <= hi for l2, h2 in with_mma)]
    return [(lo, hi, collections.Counter(op.split(".")[0] for a, op, _ in ins if lo <= a <= hi))
            for lo, hi in sorted(inner)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", default="fwd", choices=("fwd", "bwd"))
    ap.add_argument("--passes", type=int, default=1, choices=(1, 2))
    ap.add_argument("--packed", action="store_true", help="the split-KV decode items")
    ap.add_argument("--thread-release", action="store_true")
    ap.add_argument("--schedule", choices=("lists", "counter", "one_each"), default="lists",
                    help="work lists, items taken from a counter, or one item per program")
    ap.add_argument("--head-dim", type=int, default=128, help="the padded head dim")
    ap.add_argument("--split", action="store_true", help="backward: key tiles cut into parts (split_columns)")
    ap.add_argument("--sass", default=None, help="write the disassembly here")
    ap.add_argument("--loops", action="store_true",
                    help="also the instruction mix of each innermost loop that issues wgmma (the block loops)")
    a = ap.parse_args()
    if not HAVE_GLUON:
        sys.exit(f"needs Triton with the checked Gluon release (this is triton {triton.__version__})")
    if a.kernel == "bwd":
        kernel = compile_backward(a.head_dim, a.split)
    else:
        kernel = compile_forward(a.passes, a.packed, a.thread_release, a.schedule, a.head_dim)
    tools = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(kernel.asm["cubin"])
        cubin.flush()
        usage, sass = (subprocess.run([os.path.join(tools, "cuobjdump"), flag, cubin.name], capture_output=True,
                                      text=True).stdout for flag in ("-res-usage", "-sass"))
    if a.sass:
        with open(a.sass, "w") as f:
            f.write(sass)
    ops = collections.Counter(op for _, op, _ in _INSTRUCTION.findall(sass))
    print(usage.strip().splitlines()[-1].strip() + f" DYNAMIC_SHARED:{kernel.metadata.shared}")
    print(f"instructions {sum(ops.values())}; " + ", ".join(f"{o} {ops.get(o, 0)}" for o in COUNTED))
    if a.loops:
        for lo, hi, mix in block_loops(sass):
            print(f"loop {lo:#07x}-{hi:#07x}: {sum(mix.values())} instructions (local loads {mix['LDL']}, "
                  f"stores {mix['STL']}); " + ", ".join(f"{o} {n}" for o, n in mix.most_common(12)))


if __name__ == "__main__":
    main()

"""benchmarks/sass_sm90.py: the block loops found in a disassembly (no compiler needed)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: benchmarks

from benchmarks.sass_sm90 import block_loops  # noqa: E402


def _sass(lines):
    return "\n".join(f"        /*{addr:04x}*/                   {text} ;" for addr, text in lines)


def test_innermost_wgmma_loops_only():
    sass = _sass([
        (0x00, "MOV R1, R2"),
        (0x10, "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], R24"),  # outer loop head
        (0x20, "LDL R3, [R1+0x8]"),
        (0x30, "HGMMA.64x64x16.F32.BF16 R40, gdesc[UR8], RZ"),  # inner loop
        (0x40, "FMUL R5, R5, R6"),
        (0x50, "@P0 BRA 0x30"),  # closes the inner loop
        (0x60, "FADD R7, R7, R8"),
        (0x70, "@!P1 BRA 0x10"),  # closes the outer loop (holds the inner one)
        (0x80, "IADD3 R9, R9, 0x1, RZ"),
        (0x90, "@P2 BRA 0x80"),  # a loop without wgmma
        (0xa0, "EXIT"),
        (0xb0, "SYNCS.PHASECHK.TRANS64.TRYWAIT P0, [UR4], R2"),  # a wait's retry stub after EXIT
        (0xc0, "@!P0 BRA 0x20"),
    ])
    loops = block_loops(sass)
    assert [(lo, hi) for lo, hi, _ in loops] == [(0x30, 0x50)]
    mix = loops[0][2]
    assert mix["HGMMA"] == 1 and mix["FMUL"] == 1 and mix["BRA"] == 1 and mix["LDL"] == 0

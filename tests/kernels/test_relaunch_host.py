"""Host side of replayed launches (CPU): the argument list a ``Relaunch`` replays, and where
decode records none."""
import torch

import maskattn as ma
from maskattn.kernels import decode, relaunch


class _Kernel:
    arg_names = ["A", "B", "n", "BLOCK", "FLAG"]


class _Compiled:
    def __init__(self):
        self.grids, self.calls = [], []

    def __getitem__(self, grid):
        self.grids.append(grid)
        return lambda *args: self.calls.append(args)


def test_replays_every_argument_in_signature_order_with_new_tensors():
    compiled = _Compiled()
    a, b, a2, b2 = (torch.zeros(1) for _ in range(4))
    run = relaunch.Relaunch(_Kernel, compiled, (3, 2), (a, b, 7), {"FLAG": True}, {"BLOCK": 64, "num_warps": 4}, (0, 1))
    assert compiled.grids == [(3, 2, 1)]  # padded to three grid axes once, at recording
    run(a2, b2)
    run(a, b)
    assert compiled.calls[0][0] is a2 and compiled.calls[0][1] is b2 and compiled.calls[0][2:] == (7, 64, True)
    assert compiled.calls[1][0] is a and compiled.calls[1][1] is b  # the recorded list itself is not changed


def test_no_replays_without_a_compiled_gpu_kernel():
    assert not relaunch.can_record(None)
    q, k, v = torch.zeros(1, 4, 1, 32), torch.zeros(1, 2, 64, 32), torch.zeros(1, 2, 64, 32)
    assert decode._plan_key(q, k, v, 1.0, None) is None  # CPU tensors
    bm = ma.compile_mask(ma.causal(), 1, 64, block_q=16)
    ma.attention(q, k, v, bm)
    assert "_decode_plans" not in bm.__dict__

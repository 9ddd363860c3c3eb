"""Host side of replayed launches (CPU): the argument list a ``Relaunch`` replays, and where
decode records none."""
import torch

import maskattn as ma
from maskattn.kernels import decode, op, relaunch


class _Kernel:
    arg_names = ["A", "B", "n", "BLOCK", "FLAG"]


class _Launcher:
    """What a replay reads of Triton 3.6's CudaLauncher; ``launch`` records its arguments."""
    launch_cooperative_grid, launch_pdl, num_ctas = 0, 0, 1
    global_scratch_size, global_scratch_align, profile_scratch_size = 0, 1, 0

    def __init__(self):
        self.calls = []

    def launch(self, *args):
        self.calls.append(args)


class _Compiled:
    function, packed_metadata = 1234, (4, 1, 0)

    def __init__(self):
        self.grids, self.run = [], _Launcher()

    def __getitem__(self, grid):  # Triton's own replay path
        self.grids.append(grid)
        return lambda *args: self.run.calls.append(("runner",) + args)


def _replay(monkeypatch):
    compiled = _Compiled()
    monkeypatch.setattr(relaunch, "_current_stream", lambda device: 77)
    monkeypatch.setattr(relaunch.torch.cuda, "current_device", lambda: 0)
    return compiled


def test_replays_every_argument_in_signature_order_with_new_tensors(monkeypatch):
    compiled = _replay(monkeypatch)
    a, b, a2, b2 = (torch.zeros(1) for _ in range(4))
    run = relaunch.Relaunch(_Kernel, compiled, (3, 2), (a, b, 7), {"FLAG": True}, {"BLOCK": 64, "num_warps": 4}, (0, 1))
    assert compiled.grids == [(3, 2, 1)]  # padded to three grid axes once, at recording
    assert run._args[:2] == [None, None]  # the recorded call's tensors are not kept alive
    run(a2, b2)
    run(a, b)
    head = (3, 2, 1, 77, 1234, 0, 0, None, None, (4, 1, 0), None, None, None)  # the C launcher's own arguments
    first, second = compiled.run.calls
    # tensors go as their addresses (the launcher would look each one up)
    assert first[:13] == head and first[13:] == (a2.data_ptr(), b2.data_ptr(), 7, 64, True)
    assert second[13:15] == (a.data_ptr(), b.data_ptr())  # the recorded list itself is not changed


def test_recorded_tensors_go_as_addresses_and_stay_alive(monkeypatch):
    compiled = _replay(monkeypatch)
    a, kept = torch.zeros(1), torch.zeros(3)
    run = relaunch.Relaunch(_Kernel, compiled, (1,), (a, kept, 5), {"FLAG": True}, {"BLOCK": 32}, (0,))
    address = kept.data_ptr()
    del kept  # the replay passes its address: the Relaunch holds the tensor
    run(a)
    assert compiled.run.calls[0][14] == address and any(t.data_ptr() == address for t in run._tensors)


def test_replays_take_tritons_path_under_launch_hooks(monkeypatch):
    from triton import knobs
    compiled = _replay(monkeypatch)
    a = torch.zeros(1)
    run = relaunch.Relaunch(_Kernel, compiled, (5,), (a, a, 3), {"FLAG": False}, {"BLOCK": 16}, (0,))
    hook = lambda metadata: None  # noqa: E731
    knobs.runtime.launch_enter_hook.add(hook)
    try:
        run(a)
    finally:
        knobs.runtime.launch_enter_hook.remove(hook)
    run(a)
    monkeypatch.setattr(knobs.runtime, "launch_exit_hook", hook, raising=False)  # a plain function, not a chain
    run(a)
    calls = compiled.run.calls
    # Triton's path gets the replay's tensors as tensors (hooks may look at them)
    assert calls[0] == ("runner", a, a.data_ptr(), 3, 16, False) and calls[1][0] == 5 and calls[2][0] == "runner"


def test_no_replays_without_a_compiled_gpu_kernel():
    assert not relaunch.can_record(None)
    q, k, v = torch.zeros(1, 4, 1, 32), torch.zeros(1, 2, 64, 32), torch.zeros(1, 2, 64, 32)
    assert decode._plan_key(q, k, v, 1.0, None) is None  # CPU tensors
    bm = ma.compile_mask(ma.causal(), 1, 64, block_q=16)
    ma.attention(q, k, v, bm)
    assert "_decode_plans" not in bm.__dict__


def test_replay_declines_without_a_plan_or_off_the_gpu():
    q, k, v = torch.zeros(1, 4, 1, 32), torch.zeros(1, 2, 64, 32), torch.zeros(1, 2, 64, 32)
    bm = ma.compile_mask(ma.causal(), 1, 64, block_q=16)
    assert op.replay_decode(bm, q, k, v, None, None, None, False) is None  # no plan on the map
    bm.__dict__["_decode_plans"] = {}
    assert op.replay_decode(bm, q, k, v, None, None, None, False) is None  # CPU tensors: no key
    out = ma.attention(q, k, v, bm)
    assert out.shape == q.shape


def test_replay_takes_a_plan_only_where_the_full_path_would_give_the_same(monkeypatch):
    # a stand-in plan under a stand-in key (real plans need the GPU): which calls replay it
    q, k, v = torch.zeros(1, 4, 1, 32), torch.zeros(1, 2, 64, 32), torch.zeros(1, 2, 64, 32)
    bm = ma.compile_mask(ma.causal(), 1, 64, block_q=16)
    keys = []
    monkeypatch.setattr(decode, "_plan_key", lambda q, k, v, scale, softcap: keys.append((scale, softcap)) or "key")
    calls = []
    bm.__dict__["_decode_plans"] = {"key": lambda q, k, v, fresh_lse: calls.append(fresh_lse) or ("out", "lse")}
    assert op.replay_decode(bm, q, k, v, None, None, None, False) == "out"
    assert op.replay_decode(bm, q, k, v, 0.5, 2.0, True, True) == ("out", "lse")
    assert calls == [False, True] and keys == [(ma.api._check_scale(None, 32), None), (0.5, 2.0)]  # api's default
    declined = [dict(scale=True), dict(scale=1), dict(softcap=True), dict(deterministic="yes")]
    for kwargs in declined:  # the full path rejects or converts these
        args = dict(scale=None, softcap=None, deterministic=None) | kwargs
        assert op.replay_decode(bm, q, k, v, args["scale"], args["softcap"], args["deterministic"], False) is None
    assert op.replay_decode(bm, q.clone().requires_grad_(), k, v, None, None, None, False) is None  # autograd
    with torch.no_grad():  # no gradient can flow: replayed
        assert op.replay_decode(bm, q.clone().requires_grad_(), k, v, None, None, None, False) == "out"
    assert op.replay_decode(bm, torch.nn.Parameter(q), k, v, None, None, None, False) is None  # a subclass
    assert op.replay_decode(bm, q.to("meta"), k, v, None, None, None, False) is None  # traced path
    for bad in (k[0], k.unsqueeze(0)):  # not 4-D: the full path's ValueError, never a replay
        assert op.replay_decode(bm, q, bad, v, None, None, None, False) is None
        assert op.replay_decode(bm, q, k, bad, None, None, None, False) is None
    assert len(calls) == 3


class _Param:
    def __init__(self, name, constexpr=False):
        self.name, self.is_constexpr = name, constexpr
        self.is_const = self.do_not_specialize = self.do_not_specialize_on_alignment = False
        self.annotation_type = ""


class _JitKernel:
    """A JIT function as far as the cached launch paths read it; ``kernel[grid](...)`` is Triton's
    launch (recorded in ``jit``) and returns the compiled kernel."""
    arg_names = ["A", "n", "BLOCK"]
    params = [_Param("A"), _Param("n"), _Param("BLOCK", constexpr=True)]
    device_caches = {0: (None, None, None, "backend", None)}

    def __init__(self):
        self.jit, self.compiled = [], _Compiled()

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.jit.append((grid, args, kwargs)) or self.compiled


def _cached_paths(monkeypatch):
    monkeypatch.setattr(relaunch, "_RELEASE_OK", True)
    monkeypatch.setattr(relaunch, "interpreting", lambda: False)
    monkeypatch.setattr(relaunch, "_COMPILED", {})
    monkeypatch.setattr(relaunch.torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(relaunch, "_current_stream", lambda device: 77)
    # Triton's rule, as far as these tests need it: ints by divisibility by 16, tensors by dtype
    monkeypatch.setattr(relaunch, "_specialize", lambda backend, a, *flags: (
        ("*" + str(a.dtype), "") if isinstance(a, torch.Tensor) else ("i32", "D" if a % 16 == 0 else "")))


def test_direct_launches_reuse_a_compiled_kernel_only_for_the_same_specialisation(monkeypatch):
    _cached_paths(monkeypatch)
    kernel = _JitKernel()
    a = torch.zeros(4)
    relaunch.launch_direct(kernel, (3,), (a, 17), {"BLOCK": 32}, {"num_warps": 4})
    relaunch.launch_direct(kernel, (5, 2), (a, 33), {"BLOCK": 32}, {"num_warps": 4})  # 33: like 17
    relaunch.launch_direct(kernel, (5,), (a, 32), {"BLOCK": 32}, {"num_warps": 4})  # divisible by 16: Triton's path
    relaunch.launch_direct(kernel, (5,), (a, 33), {"BLOCK": 64}, {"num_warps": 4})  # another constexpr
    assert [call[0] for call in kernel.jit] == [(3,), (5,), (5,)]
    (direct,) = kernel.compiled.run.calls
    assert direct[:4] == (5, 2, 1, 77) and direct[13] is a and direct[14:] == (33, 32)  # signature order
    assert all(not isinstance(x, torch.Tensor) for entry in relaunch._COMPILED for x in entry[:4])


def test_recorded_launches_reuse_the_compiled_kernel_of_an_earlier_map(monkeypatch):
    _cached_paths(monkeypatch)
    kernel = _JitKernel()
    launches = []

    def launch(k, grid_fn, args, constexprs, cfg, key):  # config.launch: Triton's launch, block sizes used
        launches.append(args)
        return kernel.compiled, grid_fn(cfg), cfg

    monkeypatch.setattr(relaunch, "launch", launch)
    a, b = torch.zeros(4), torch.zeros(8)
    first = relaunch.launch_recorded(kernel, lambda c: (c["BLOCK"],), (a, 17), {}, {"BLOCK": 16}, "key", (0,))
    second = relaunch.launch_recorded(kernel, lambda c: (c["BLOCK"],), (b, 49), {}, {"BLOCK": 16}, "key", (0,))
    assert len(launches) == 1 and first is not second
    (run,) = kernel.compiled.run.calls  # the second call launched through the compiled kernel
    assert run[0] == 16 and run[13:] == (b.data_ptr(), 49, 16)
    second(a)  # and is a replayable launch of its own arguments
    assert kernel.compiled.run.calls[-1][13:] == (a.data_ptr(), 49, 16)
    relaunch.launch_recorded(kernel, lambda c: (c["BLOCK"],), (b, 48), {}, {"BLOCK": 16}, "key", (0,))
    assert len(launches) == 2  # another specialisation: Triton's launch


def test_int_slots_take_each_replays_integers(monkeypatch):
    # decoding without a map replays one launch at every key count: the integers named by
    # ``int_slots`` come with each call (both launch paths), the others stay as recorded
    compiled = _replay(monkeypatch)
    a, b = torch.zeros(1), torch.zeros(2)
    run = relaunch.Relaunch(_Kernel, compiled, (2,), (a, b, 7), {"FLAG": True}, {"BLOCK": 64}, (0,), int_slots=(2,))
    run(b, ints=(9,))
    run(a)  # no integers given: the recorded one
    assert compiled.run.calls[0][13:] == (b.data_ptr(), b.data_ptr(), 9, 64, True)
    assert compiled.run.calls[1][13:] == (a.data_ptr(), b.data_ptr(), 7, 64, True)
    from triton import knobs
    hook = lambda metadata: None  # noqa: E731
    knobs.runtime.launch_enter_hook.add(hook)
    try:
        run(a, ints=(11,))  # Triton's path under a launch hook: the same substitution
    finally:
        knobs.runtime.launch_enter_hook.remove(hook)
    assert compiled.run.calls[2] == ("runner", a, b.data_ptr(), 11, 64, True)


def test_unmasked_plan_keys_hold_classes_of_the_integers_not_their_values(monkeypatch):
    from maskattn.kernels import plans, unmasked_decode
    monkeypatch.setattr(plans, "replayable", lambda q: True)
    monkeypatch.setattr(unmasked_decode.torch._C, "_cuda_getCurrentRawStream", lambda index: 0, raising=False)
    q = torch.zeros(2, 8, 1, 64, dtype=torch.bfloat16)

    def key(lk, stride_pad=0):
        k = torch.zeros(2, 2, lk + stride_pad, 64, dtype=torch.bfloat16)[:, :, :lk]
        return unmasked_decode._plan_key(q, k, k, 0.125, None, unmasked_decode._ints(k, k, None))

    assert key(1001) == key(1003) == key(1001, stride_pad=30)  # key counts / strides of one class
    assert key(1001) == key(1004)  # a key count is no stride: its byte alignment splits no plan
    assert key(1001) != key(1008)  # a multiple of 16: Triton specialises it
    assert key(1001) != key(1)  # the value 1: another specialisation
    # a row stride that breaks the descriptors' 16-byte alignment (bf16: odd multiples of 4 elements)
    k = torch.zeros(2, 2, 1001, 68, dtype=torch.bfloat16)[..., :64]
    assert unmasked_decode._plan_key(q, k, k, 0.125, None, unmasked_decode._ints(k, k, None)) != key(1001)

"""Launching a compiled Triton kernel again with new tensors, without Triton's per-call binding.

``kernel[grid](*args)`` binds and specialises every argument, builds a cache key and looks the
compiled kernel up on each call: about 35 us of host time for the 45 arguments of the decode
kernel (H200 host, session 13), as long as the GPU work of decoding one token at B=1, 8k keys.
A decode step calls the same launch once per layer with only the tensors changed, so
``Relaunch`` keeps the compiled kernel, its grid and its full argument list from one normal
launch and replays it with the tensors substituted at the given argument positions.

A replay calls the compiled kernel's C launcher itself: Triton's own replay path
(``CompiledKernel[grid](*args)``) would look the device and stream up again, build launch
metadata for hooks, and allocate the kernel's global scratch (the device-side tensor
descriptors live there) from the allocator on every call. Here the scratch is allocated once per
stream and reused: launches on one stream run one after the other. Tensors reach the launcher as
their addresses: given a tensor, the launcher calls its ``data_ptr()`` and asks the driver about
the pointer, for each of the 15 tensors of the decode kernel. When a launch hook is
installed (a profiler such as proton), replays take Triton's path so that the hook sees them.

That is only the same launch if the new call specialises exactly as the recorded one: the
caller must key its ``Relaunch`` objects on everything the kernel's arguments are specialised
on (shapes, strides, dtypes, 16-byte alignment of each pointer, every integer argument). A
caller may also name integer arguments that each replay substitutes (``int_slots``: the key
count and K / V strides of decoding without a map, ``unmasked_decode.py``); it then keys its
replays on how Triton specialises those integers instead of their values.
Replays run only on Triton releases whose launcher this was checked against on the GPU
(``available``); elsewhere callers keep the normal launch.
"""
from __future__ import annotations

import torch
import triton

from .config import interpreting, launch

try:
    from triton import knobs as _knobs
    from triton._C.libtriton import native_specialize_impl as _specialize
except ImportError:  # pragma: no cover - Triton < 3.4, where nothing is replayed (``_RELEASE_OK``)
    _knobs = _specialize = None

_CHECKED_RELEASES = ("3.6.",)  # the CompiledKernel / CudaLauncher internals used below, tested on the GPU
_RELEASE_OK = triton.__version__.startswith(_CHECKED_RELEASES)


def available() -> bool:
    """Is this a Triton release whose launches may be replayed? (Cheap: called on every decode call.)"""
    return _RELEASE_OK


def can_record(compiled) -> bool:
    """Can this launch's result be replayed: a compiled GPU kernel (not the interpreter's)?"""
    return _RELEASE_OK and compiled is not None and not interpreting()


def _current_stream(device: int) -> int:
    return torch._C._cuda_getCurrentRawStream(device)


def _hooks_active() -> bool:
    """Is a launch hook installed (Triton 3.6 keeps them in chains; a plain function counts too)?"""
    enter, leave = _knobs.runtime.launch_enter_hook, _knobs.runtime.launch_exit_hook
    return bool(getattr(enter, "calls", enter)) or bool(getattr(leave, "calls", leave))


def _in_signature_order(kernel, args: tuple, constexprs: dict, cfg: dict) -> list:
    """Every parameter of ``kernel`` in signature order, constexprs included, as the C launcher
    takes them: ``args`` positionally, then ``constexprs`` and the entries of ``cfg`` that are
    parameters (block sizes; not launch options such as num_warps) by name."""
    names = kernel.arg_names
    given = dict(zip(names, args))
    given.update(constexprs)
    given.update((k, v) for k, v in cfg.items() if k in names)
    return [given[n] for n in names]


class Relaunch:
    """One recorded launch: ``compiled`` (what ``kernel[grid](...)`` returned) with ``args``,
    ``constexprs`` and the block sizes in ``cfg`` as passed then; ``slots`` names the argument
    positions (in ``args``) that each replay fills with new tensors, ``int_slots`` those it
    fills with new integers (the caller keys the replay on how Triton specialises them)."""

    def __init__(self, kernel, compiled, grid: tuple, args: tuple, constexprs: dict, cfg: dict, slots: tuple,
                 int_slots: tuple = ()):
        self._args = _in_signature_order(kernel, args, constexprs, cfg)
        self._slots, self._int_slots = slots, int_slots
        for i in slots:  # filled by every replay; not kept alive here (they may be a whole KV cache)
            self._args[i] = None
        # the other tensors go to the launcher as their addresses: for a tensor it calls data_ptr()
        # and asks the driver about the pointer, one argument at a time (most of a replay's host time)
        self._tensors = [a for a in self._args if isinstance(a, torch.Tensor)]  # kept alive for the addresses
        self._args = [a.data_ptr() if isinstance(a, torch.Tensor) else a for a in self._args]
        grid = tuple(grid) + (1,) * (3 - len(grid))
        self._run = compiled[grid]  # Triton's replay path (installs the handles; used under launch hooks)
        launcher = compiled.run
        self._launch = launcher.launch  # the C entry point
        self._grid = grid
        self._function, self._meta = compiled.function, compiled.packed_metadata
        self._coop, self._pdl = launcher.launch_cooperative_grid, launcher.launch_pdl
        self._scratch_bytes = grid[0] * grid[1] * grid[2] * launcher.num_ctas * launcher.global_scratch_size
        self._scratch_align = launcher.global_scratch_align
        self._direct = launcher.profile_scratch_size == 0  # instrumented kernels keep Triton's path
        self._scratch = {}  # stream -> the address of this launch's global scratch on it
        self._device = None  # the current device at the first replay (Triton launches on the current device)

    def __call__(self, *tensors, ints: tuple = ()) -> None:
        args = self._args.copy()
        for i, x in zip(self._int_slots, ints):
            args[i] = x
        if not self._direct or _hooks_active():
            for i, t in zip(self._slots, tensors):
                args[i] = t
            self._run(*args)
            return
        for i, t in zip(self._slots, tensors):  # the callers checked device and layout of these
            args[i] = t.data_ptr()
        if self._device is None:
            self._device = torch.cuda.current_device()
        stream = _current_stream(self._device)
        scratch = self._scratch.get(stream)
        if scratch is None and self._scratch_bytes:
            from triton.runtime import _allocation
            buffer = _allocation._allocator.get()(self._scratch_bytes, self._scratch_align, stream)
            self._tensors.append(buffer)
            scratch = self._scratch[stream] = buffer.data_ptr()
        gx, gy, gz = self._grid
        self._launch(gx, gy, gz, stream, self._function, self._coop, self._pdl, scratch, None, self._meta,
                     None, None, None, *args)  # no launch metadata, no hooks (``_hooks_active`` is false)


# (kernel, device, constexprs, block sizes, Triton's specialisation of each argument) -> (compiled
# kernel, block sizes it was launched with). Compiled kernels only, no tensors: entries outlive the
# calls that made them (a CUDA graph pool's buffers must not be kept alive from here).
_COMPILED: dict = {}
_MAX_COMPILED = 256


def _specialisation(kernel, args: tuple, device: int):
    """How Triton's JIT specialises the positional ``args`` of ``kernel`` on ``device`` (per argument:
    type, 16-byte alignment or divisibility by 16, the value 1), computed by Triton's own function;
    None for kernels with annotated parameters (not used here)."""
    backend = kernel.device_caches[device][3]
    spec = []
    for param, arg in zip(kernel.params, args):
        if param.is_constexpr:
            spec.append(("constexpr", arg))
        elif param.annotation_type:
            return None
        else:
            spec.append(_specialize(backend, arg, param.is_const, not param.do_not_specialize,
                                    not param.do_not_specialize_on_alignment))
    return tuple(spec)


def _cached(kernel, args: tuple, constexprs: dict, cfg: dict):
    """(entry key, its (compiled kernel, block sizes used) or None) for a launch of ``kernel`` on
    the current device; key None where launches are not cached (kernels with annotated parameters)."""
    device = torch.cuda.current_device()
    spec = _specialisation(kernel, args, device)
    if spec is None:
        return None, None
    entry = (kernel, device, tuple(constexprs.items()), tuple(cfg.items()), spec)
    return entry, _COMPILED.get(entry)


def _keep(entry, compiled, used: dict) -> None:
    if entry is not None:
        if len(_COMPILED) >= _MAX_COMPILED:
            _COMPILED.clear()
        _COMPILED[entry] = (compiled, used)


def launch_recorded(kernel, grid_fn, args: tuple, constexprs: dict, cfg: dict, key, slots: tuple,
                    int_slots: tuple = ()) -> "Relaunch | None":
    """``config.launch(kernel, grid_fn, args, constexprs, cfg, key)``, returned as a ``Relaunch``
    (``slots`` and ``int_slots`` as there) for later replays, or None where launches cannot be replayed.

    A launch that Triton would specialise exactly like an earlier one (same kernel, device,
    constexprs and block sizes, and the same specialisation of every argument) runs the earlier
    launch's compiled kernel through a new ``Relaunch``, without Triton's binding and cache
    lookup: a decode step builds a new map, so its first layer records a launch every step."""
    if not _RELEASE_OK or interpreting():
        launch(kernel, grid_fn, args, constexprs, cfg, key)
        return None
    entry, hit = _cached(kernel, args, constexprs, cfg)
    if hit is not None:
        compiled, used = hit
        run = Relaunch(kernel, compiled, grid_fn(used), args, constexprs, used, slots, int_slots)
        run(*(args[i] for i in slots), ints=tuple(args[i] for i in int_slots))
        return run
    compiled, grid, used = launch(kernel, grid_fn, args, constexprs, cfg, key)
    if not can_record(compiled):
        return None
    _keep(entry, compiled, used)
    return Relaunch(kernel, compiled, grid, args, constexprs, used, slots, int_slots)


def launch_direct(kernel, grid: tuple, args: tuple, constexprs: dict, options: dict) -> None:
    """``kernel[grid](*args, **constexprs, **options)``. Where an earlier launch was specialised
    the same way (see ``launch_recorded``), its compiled kernel is launched through its C
    launcher: for small kernels launched once per decode step (the map of each step), Triton's
    binding costs more host time than the launch. Kernels needing global scratch, launch hooks
    and the interpreter take Triton's path."""
    if not _RELEASE_OK or interpreting() or _hooks_active():
        kernel[grid](*args, **constexprs, **options)
        return
    entry, hit = _cached(kernel, args, constexprs, options)
    if hit is None:
        compiled = kernel[grid](*args, **constexprs, **options)
        run = compiled.run
        if run.global_scratch_size == 0 and run.profile_scratch_size == 0:
            _keep(entry, compiled, options)
        return
    compiled, device = hit[0], entry[1]
    run = compiled.run
    grid = tuple(grid) + (1,) * (3 - len(grid))
    run.launch(*grid, _current_stream(device), compiled.function, run.launch_cooperative_grid, run.launch_pdl, None,
               None, compiled.packed_metadata, None, None, None, *_in_signature_order(kernel, args, constexprs, options))

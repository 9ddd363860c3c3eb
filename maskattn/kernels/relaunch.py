"""Launching a compiled Triton kernel again with new tensors, without Triton's per-call binding.

``kernel[grid](*args)`` binds and specialises every argument, builds a cache key and looks the
compiled kernel up on each call: about 35 us of host time for the 45 arguments of the decode
kernel (H200 host, session 13), as long as the GPU work of decoding one token at B=1, 8k keys.
A decode step calls the same launch once per layer with only the tensors changed, so
``Relaunch`` keeps the compiled kernel, its grid and its full argument list from one normal
launch and replays it through the compiled kernel's own launcher (``CompiledKernel[grid]``),
substituting the tensors at the given argument positions.

That is only the same launch if the new call specialises exactly as the recorded one: the
caller must key its ``Relaunch`` objects on everything the kernel's arguments are specialised
on (shapes, strides, dtypes, 16-byte alignment of each pointer, every integer argument).
Replays run only on Triton releases whose launcher this was checked against on the GPU
(``available``); elsewhere callers keep the normal launch.
"""
from __future__ import annotations

import triton

from .config import interpreting

_CHECKED_RELEASES = ("3.6.",)  # CompiledKernel[grid](*all arguments, constexprs included), tested on the GPU
_RELEASE_OK = triton.__version__.startswith(_CHECKED_RELEASES)


def available() -> bool:
    """Is this a Triton release whose launches may be replayed? (Cheap: called on every decode call.)"""
    return _RELEASE_OK


def can_record(compiled) -> bool:
    """Can this launch's result be replayed: a compiled GPU kernel (not the interpreter's)?"""
    return _RELEASE_OK and compiled is not None and not interpreting()


class Relaunch:
    """One recorded launch: ``compiled`` (what ``kernel[grid](...)`` returned) with ``args``,
    ``constexprs`` and the block sizes in ``cfg`` as passed then; ``slots`` names the argument
    positions (in ``args``) that each replay fills with new tensors."""

    def __init__(self, kernel, compiled, grid: tuple, args: tuple, constexprs: dict, cfg: dict, slots: tuple):
        names = kernel.arg_names
        given = dict(zip(names, args))
        given.update(constexprs)
        given.update((k, v) for k, v in cfg.items() if k in names)
        self._args = [given[n] for n in names]  # every parameter in signature order, constexprs included
        self._slots = slots
        self._run = compiled[tuple(grid) + (1,) * (3 - len(grid))]

    def __call__(self, *tensors) -> None:
        args = self._args.copy()
        for i, t in zip(self._slots, tensors):
            args[i] = t
        self._run(*args)

"""Which work items a program of a persistent Hopper kernel (``flash_fwd_sm90``, and
``flash_bwd_sm90`` on short columns: one program per SM, items numbered heaviest first) takes,
in two schedules (the backward uses the static one):

* **static** (``static_rounds``, ``snake_item``): each round hands the next ``num_programs``
  items out, left to right in even rounds and right to left in odd ones (a snake), so every
  program's heavy and light items even out. Plain striding gave program 0 the heaviest item of
  every round (H200, session 19: forward documents 8k / 32k 1.07x / 1.04x faster with the snake;
  session 20: backward causal 8k 0.90x with striding, 1.02-1.05x with the snake). The
  items of a program are known up front, so the forward's NaN redo pass can walk them again.
* **dynamic** (``take_item`` with ``DYNAMIC``): the producer warpgroup takes the next unclaimed
  item from a per-launch int32 counter (zeroed by the host for each launch) and hands it to the
  consumers through one shared-memory slot; items start in heaviest-first order on whichever
  program frees up, as the hardware schedules one program per item, while the next item's loads
  still overlap the current item's end. Long rows need it: a static share of long items leaves
  a tail (causal 32k / 128k: 0.95x / 0.90x of one program per item with the snake, 1.01-1.02x /
  1.04-1.07x with the counter).

A program walks ``t = take_item(0, ...)``, then ``take_item(1, ...)``, ... while ``t < stop``;
the producer and each consumer call it with the same ``k`` in the same order.

The backward walks host-made lists instead (``listed_items``; ``work_lists.py``): costs balanced
longest-processing-time first where the map can be read back, the snake where it cannot.
"""
from __future__ import annotations

from .sm90_common import HAVE_GLUON

if HAVE_GLUON:
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import mbarrier

    @gluon.jit
    def static_rounds(n_items, DYNAMIC: gl.constexpr):
        """How many of the first ``n_items`` items this program takes in the static schedule; 0
        (unused) with ``DYNAMIC``."""
        if DYNAMIC:
            rounds = 0
        else:
            pid = gl.program_id(0)
            nprog = gl.num_programs(0)
            full = n_items // nprog
            last = pid + (full % 2) * (nprog - 1 - 2 * pid)  # its slot in the last, partial round
            rounds = full + (last < n_items - full * nprog).to(gl.int32)
        return rounds

    @gluon.jit
    def snake_item(r):
        """This program's item in round r of the static schedule (one program per item: pid)."""
        pid = gl.program_id(0)
        nprog = gl.num_programs(0)
        return r * nprog + pid + (r % 2) * (nprog - 1 - 2 * pid)

    @gluon.jit
    def listed_items(PROG_PTR):
        """This program's slice of a work list (``work_lists.py``) -> (first entry, entries)."""
        pid = gl.program_id(0)
        first = gl.load(PROG_PTR + pid)
        return first, gl.load(PROG_PTR + pid + 1) - first

    @gluon.jit
    def take_item(k, rounds, stop, SCHED, item_buf, item_ready, item_free, PRODUCER: gl.constexpr,
                  DYNAMIC: gl.constexpr):
        """The program's k-th item, or ``stop`` when it has none left. Static: round k of
        ``snake_item`` while ``k < rounds``. ``DYNAMIC``: ``SCHED`` is the launch's counter;
        ``item_buf`` (int32 [1] in shared memory), ``item_ready`` (mbarrier, 1 arrival) and
        ``item_free`` (mbarrier, one arrival per consumer warpgroup) carry the item from the
        producer to the consumers. The producer publishes item k once every consumer has read
        item k - 1, which they do at its start, long before the producer gets there."""
        L1: gl.constexpr = gl.BlockedLayout([1], [32], [gl.num_warps()], [0])
        if DYNAMIC:
            if PRODUCER:
                t = gl.minimum(gl.atomic_add(SCHED, 1, sem="relaxed"), stop)
                mbarrier.wait(item_free, (k & 1) ^ 1)
                item_buf.store(gl.full([1], t, gl.int32, L1))
                mbarrier.arrive(item_ready, count=1)  # behind a bar.sync: every thread's store
            else:
                mbarrier.wait(item_ready, k & 1)
                t = gl.max(item_buf.load(L1), 0)
                mbarrier.arrive(item_free, count=1)
        else:
            t = stop
            if k < rounds:
                t = snake_item(k)
        return t

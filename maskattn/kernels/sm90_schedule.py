"""Which work items a program of a Hopper kernel (``flash_fwd_sm90``, ``flash_bwd_sm90``) takes,
under one of three schedules (the constexpr ``SCHEDULE``):

* ``"one_each"``: one program per item, program ``pid`` runs item ``pid`` (split-KV decode).
* ``"lists"``: a persistent grid walking host-made per-program lists (``work_lists.py``;
  ``listed_items``): program ``p`` runs ``items[ptr[p]:ptr[p + 1]]`` in that order. The lists
  are balanced by estimated cost and, where that costs little balance, ordered so that the items
  running at one moment are neighbours sharing their inputs in L2 (H100, session 24: the
  backward on documents 32k 1.49x faster than with cost-only lists). A program's items are known
  up front, so the forward's NaN redo pass can walk them again. Under CUDA graph capture (the map
  cannot be read back) the lists are the snake: round ``r`` hands items ``[r * P, (r + 1) * P)``
  out left to right in even rounds and right to left in odd ones.
* ``"counter"``: the producer warpgroup takes the next unclaimed item from a per-launch int32
  counter (zeroed by the host for each launch) and hands it to the consumers through one
  shared-memory slot; items start in heaviest-first order on whichever program frees up, as the
  hardware schedules one program per item, while the next item's loads still overlap the current
  item's end. Long rows need it: a static share of long items leaves a tail (H200, session 19:
  causal 32k / 128k 0.95x / 0.90x of one program per item with the snake, 1.01-1.02x /
  1.04-1.07x with the counter).

A program calls ``first, count = program_items(...)`` once, then walks ``t = take_item(0, ...)``,
``take_item(1, ...)``, ... while ``t < stop``; the producer and each consumer call it with the
same ``k`` in the same order. Under ``"lists"`` the entry ``take_item(k)`` returns is read ahead:
``ahead = peek_item(k, ...)`` is issued when item ``k - 1`` starts (``peek_item(0)`` before the
walk), so an item's start waits only for the map reads that follow from it, as under the snake.
"""
from __future__ import annotations

from .sm90_common import HAVE_GLUON

L2_BYTES = 50 * 2**20  # the L2 cache of an H100 / H200
_SECTION_TAIL = 0.01  # a section's busiest item may outlast the section's work by this share of the launch


def l2_section(groups: int, group_bytes: int, group_work: float, max_item: int, slots: int) -> int:
    """Groups per section of a launch whose items are numbered section by section
    (``section_item``; groups: the forward's query heads, the backward's KV heads): the largest
    power of two whose operands, ``group_bytes`` each, fit the L2 (at least 1), as
    FlashAttention-4's heaviest-first scheduler sizes its head swizzle. Doubled while the
    section's busiest item (``max_item`` tiles) would outlast the section's work (``group_work``
    tiles a group, on ``slots`` programs) by more than 1% of the whole launch's: the last
    section's heaviest items start late (Longformer's global rows end with every group in one
    section, which is plain heaviest-first order)."""
    if groups <= 1 or group_work <= 0:
        return max(groups, 1)
    fit = max(1, int(L2_BYTES // max(group_bytes, 1)))
    section = 1 << (fit.bit_length() - 1)
    launch = groups * group_work / slots
    while section < groups and max_item - section * group_work / slots > _SECTION_TAIL * launch:
        section *= 2
    return min(section, groups)


if HAVE_GLUON:
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.hopper import mbarrier

    @gluon.jit
    def section_item(t, n_groups, section, n_ranks):
        """Item t -> (group, rank) with items numbered section by section: ``section`` groups
        (the last section the rest), rank-major inside each (every group's heaviest item first),
        so that the programs running at one moment work on a few groups whose operands fit the
        L2 (``l2_section``). ``section == n_groups``: plain rank-major, t -> (t % n_groups,
        t // n_groups)."""
        span = section * n_ranks
        sec = t // span
        g0 = sec * section
        width = gl.minimum(section, n_groups - g0)
        local = t - sec * span
        return g0 + local % width, local // width

    @gluon.jit
    def listed_items(PROG_PTR):
        """This program's slice of a work list (``work_lists.py``) -> (first entry, entries)."""
        pid = gl.program_id(0)
        first = gl.load(PROG_PTR + pid)
        return first, gl.load(PROG_PTR + pid + 1) - first

    @gluon.jit
    def program_items(PROG_PTR, SCHEDULE: gl.constexpr):
        """(first list entry, items) of this program: its work list under ``"lists"``, its own
        item under ``"one_each"``; unused (0, 0) under ``"counter"``."""
        if SCHEDULE == "lists":
            first, count = listed_items(PROG_PTR)
        elif SCHEDULE == "one_each":
            first, count = gl.program_id(0), 1
        else:
            first, count = 0, 0
        return first, count

    @gluon.jit
    def peek_item(k, first, count, PROG_ITEMS, SCHEDULE: gl.constexpr):
        """``"lists"``: entry ``first + k`` of ``PROG_ITEMS`` (past the program's list: ``first``,
        never used), loaded now and used by ``take_item(k, ..., ahead)`` one item later; 0 under
        the other schedules. H100, session 26: reading ahead sped the forward on lists up 2-8%."""
        t = 0
        if SCHEDULE == "lists":
            t = first  # past the list: never used
            if k < count:
                t = gl.load(PROG_ITEMS + first + k)
        return t

    @gluon.jit
    def take_item(k, first, count, stop, ahead, SCHED, item_buf, item_ready, item_free,
                  PRODUCER: gl.constexpr, SCHEDULE: gl.constexpr):
        """The program's k-th item, or ``stop`` when it has none left. ``"lists"``: ``ahead``
        (``peek_item(k, ...)``, entry ``first + k``) while ``k < count``; ``"one_each"``: ``first`` (the
        program id) for ``k = 0``. ``"counter"``: ``SCHED`` is the launch's counter; ``item_buf``
        (int32 [1] in shared memory), ``item_ready`` (mbarrier, 1 arrival) and ``item_free``
        (mbarrier, one arrival per consumer warpgroup) carry the item from the producer to the
        consumers. The producer publishes item k once every consumer has read item k - 1, which
        they do at its start, long before the producer gets there."""
        L1: gl.constexpr = gl.BlockedLayout([1], [32], [gl.num_warps()], [0])
        if SCHEDULE == "counter":
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
            if k < count:
                if SCHEDULE == "lists":
                    t = ahead
                else:
                    t = first
        return t

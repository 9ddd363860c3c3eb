"""Host side of the Hopper kernels' item order (CPU): how many groups a section of the
heaviest-first order holds (``sm90_schedule.l2_section``), and the sizes the forward's counter
schedule and the backward's one-program-per-key-tile launches choose from it."""
import pytest

import maskattn as ma
from benchmarks import families
from maskattn.kernels import flash_bwd_sm90, flash_fwd_sm90
from maskattn.kernels.sm90_schedule import L2_BYTES, l2_section

MIB = 2**20


@pytest.mark.parametrize("group_mib,section", [(4, 8), (16, 2), (20, 2), (30, 1), (64, 1), (1, 16)])
def test_sections_hold_a_power_of_two_of_groups_that_fit_the_l2(group_mib, section):
    # 16 groups of plenty of work each (no tail): L2_BYTES // group bytes, rounded down to a
    # power of two, at least 1, at most every group
    assert L2_BYTES == 50 * MIB
    assert l2_section(16, group_mib * MIB, group_work=10**6, max_item=10, slots=132) == section


def test_sections_grow_until_the_busiest_item_fits_their_span():
    # one group's work spans 10 tiles a program; an item of 100 tiles would end the launch late
    # unless its section spans about as long: 8 groups (80 tiles + 1% of the 160-tile launch) do not, 16 do
    assert l2_section(16, 16 * MIB, group_work=10 * 132, max_item=100, slots=132) == 16
    assert l2_section(16, 16 * MIB, group_work=10 * 132, max_item=21, slots=132) == 2
    assert l2_section(16, 16 * MIB, group_work=10 * 132, max_item=22, slots=132) == 4


def test_one_group_or_no_work_is_one_section():
    assert l2_section(1, 100 * MIB, group_work=5, max_item=5, slots=132) == 1
    assert l2_section(6, MIB, group_work=0, max_item=0, slots=132) == 6


@pytest.mark.parametrize("L,fwd,bwd", [(8192, 8, 4), (32768, 2, 1), (131072, 1, 1)])
def test_causal_sections_at_16_heads(L, fwd, bwd):
    # head dim 128, bf16: one head's K and V take 4 / 16 / 64 MiB at 8k / 32k / 128k (the
    # forward's counter), one KV head's Q, dO and fp32 dQ accumulator 8 / 32 / 128 MiB (the
    # backward's launch order); causal's longest row or column spans about one head's share
    bm = ma.compile_mask(families.mask("causal", L), L, L)
    assert flash_fwd_sm90.counter_section(bm, 1, 16, 1, L, 128, 2, 132) == fwd
    assert flash_bwd_sm90.column_section(bm, 1, 16, 1, L, 128, 2, 132) == bwd


def test_gqa_sections_are_whole_kv_heads():
    # 32 query heads on 8 KV heads: the forward's sections count query heads, whole KV heads of 4
    bm = ma.compile_mask(families.mask("causal", 32768), 32768, 32768)
    assert flash_fwd_sm90.counter_section(bm, 1, 32, 4, 32768, 128, 2, 132) == 8


def test_longformer_keeps_one_section():
    # the global rows (every key) would start late in a later section: plain heaviest-first order
    L = 32768
    bm = ma.compile_mask(families.mask("longformer", L), L, L)
    assert flash_fwd_sm90.counter_section(bm, 1, 16, 1, L, 128, 2, 132) == 16

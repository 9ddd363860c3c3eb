"""benchmarks/l2_traffic_model.py: the LRU model of the persistent kernels' tile reads."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: benchmarks

import maskattn as ma  # noqa: E402
from benchmarks import l2_traffic_model as model  # noqa: E402


def test_programs_reading_one_tile_at_once_share_it():
    # two programs, each one item reading tile "a" at the same moment: one miss
    costs = np.ones(2)
    assert model.dram_tiles([[0], [1]], costs, lambda t: ["a"], capacity=1) == (1, 2)


def test_reads_interleaved_in_time_evict_each_other():
    # program 0 reads a, a; program 1 reads b, b at the same moments: with room for one tile
    # every read misses, with room for two only the first of each
    costs = np.ones(2)
    reads = {0: ["a", "a"], 1: ["b", "b"]}
    assert model.dram_tiles([[0], [1]], costs, reads.get, capacity=1) == (4, 4)
    assert model.dram_tiles([[0], [1]], costs, reads.get, capacity=2) == (2, 4)


def test_locality_lists_read_each_tile_once_where_it_fits():
    # documents on 4 query heads (2 per KV head) and 8 programs: neighbouring query tiles share a document's K / V, and
    # with room for every tile each one is read from DRAM once under either schedule
    bm = ma.compile_mask(ma.documents([300, 5, 700, 19]), 1024, 1024)
    costs, reads, schedules = model.forward_case(bm, 2, 2, 8)
    distinct = len({key for t in range(costs.size) for key in reads(t)})
    for lists in schedules.values():
        assert sorted(t for items in lists for t in items) == list(range(costs.size))
        assert model.dram_tiles(lists, costs, reads, capacity=10**6)[0] == distinct


def test_backward_items_touch_every_query_head_of_their_kv_head():
    bm = ma.compile_mask(ma.causal(), 512, 512)
    costs, reads, _ = model.backward_case(bm, 2, 3, 4)
    assert costs.size == 2 * bm.n_k_tiles
    key_tile = int(bm.k_order[0, 0])  # item 0: rank 0 of KV head 0
    assert sorted({h for h, _ in reads(0)}) == [0, 1, 2]
    assert len(reads(0)) == 3 * (bm.n_q_tiles - key_tile)  # causal: the query tiles from the diagonal on

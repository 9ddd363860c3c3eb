"""documents(lengths=..., doc_ids=..., causal=...) against its written-out definition."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from helpers import LENGTH_CASES, assert_materialize_matches, doc_ids_from_lengths, documents_rule


def _lengths_for(kv_len):
    """A few documents (one empty in the middle) summing to kv_len."""
    a = kv_len // 3
    return [a, 0, kv_len - a - min(2, kv_len - a), min(2, kv_len - a)]


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
@pytest.mark.parametrize("causal", [True, False])
def test_lengths_match_definition(q_len, kv_len, q_offset, causal):
    lengths = _lengths_for(kv_len)
    rule = documents_rule(doc_ids_from_lengths([lengths]), causal)
    assert_materialize_matches(ma.documents(lengths, causal=causal), rule, q_len, kv_len, q_offset)


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
@pytest.mark.parametrize("causal", [True, False])
def test_batched_lengths_with_trailing_zeros_match_definition(q_len, kv_len, q_offset, causal):
    rows = [[kv_len, 0, 0, 0],                               # one document, then empty slots
            _lengths_for(kv_len),
            [1] * min(kv_len, 4) if kv_len <= 4 else [1, 1, 1, kv_len - 3]]
    rows = [r + [0] * (4 - len(r)) for r in rows]
    rule = documents_rule(doc_ids_from_lengths(rows), causal)
    mask = ma.documents(torch.tensor(rows), causal=causal)
    assert_materialize_matches(mask, rule, q_len, kv_len, q_offset, batch=3)


@pytest.mark.parametrize("q_len,kv_len,q_offset", LENGTH_CASES)
@pytest.mark.parametrize("causal", [True, False])
def test_unsorted_doc_ids_match_definition(q_len, kv_len, q_offset, causal):
    ids = torch.randint(0, 3, (2, kv_len), generator=torch.Generator().manual_seed(kv_len))
    rule = documents_rule(ids.tolist(), causal)
    assert_materialize_matches(ma.documents(doc_ids=ids, causal=causal), rule, q_len, kv_len, q_offset, batch=2)
    rule0 = documents_rule(ids[:1].tolist(), causal)
    assert_materialize_matches(ma.documents(doc_ids=ids[0], causal=causal), rule0, q_len, kv_len, q_offset)


@pytest.mark.parametrize("q_offset", [-3, 0, 2, 6])
def test_negative_doc_ids_outside_positions_see_nothing(q_offset):
    # ids may be any integers (e.g. -1 for padding tokens); a query position outside
    # [0, kv_len) is in no document, whatever ids the keys carry
    ids = torch.tensor([-1, -1, 0, 0, -2, -2])
    for causal in (True, False):
        mask = ma.documents(doc_ids=ids, causal=causal)
        assert_materialize_matches(mask, documents_rule([ids.tolist()], causal), 6, 6, q_offset)
        bm = ma.compile_mask(mask, 6, 6, q_offset=q_offset, block_q=16, block_k=32)
        assert torch.equal(bm.num_allowed, mask.materialize(6, 6, q_offset=q_offset).sum((2, 3)))


@settings(max_examples=30, deadline=None)
@given(data=st.data(), q_len=st.integers(1, 35), kv_len=st.integers(1, 35), batch=st.integers(1, 3),
       causal=st.booleans(), q_offset=st.one_of(st.none(), st.integers(-40, 40)))
def test_random_lengths(data, q_len, kv_len, batch, causal, q_offset):
    n = data.draw(st.integers(1, 6))
    rows = []
    for _ in range(batch):
        used = data.draw(st.integers(1, n))
        cuts = sorted(data.draw(st.lists(st.integers(0, kv_len), min_size=used - 1, max_size=used - 1)))
        row = [b - a for a, b in zip([0] + cuts, cuts + [kv_len])]
        rows.append(row + [0] * (n - used))
    mask = ma.documents(torch.tensor(rows), causal=causal)
    rule = documents_rule(doc_ids_from_lengths(rows), causal)
    assert_materialize_matches(mask, rule, q_len, kv_len, q_offset, batch=batch)


def test_hand_written_example():
    m = ma.documents([2, 3]).materialize(5, 5)[0, 0].int().tolist()
    assert m == [[1, 0, 0, 0, 0],
                 [1, 1, 0, 0, 0],
                 [0, 0, 1, 0, 0],
                 [0, 0, 1, 1, 0],
                 [0, 0, 1, 1, 1]]


def test_reprs():
    assert repr(ma.documents([2, 3])) == "documents(lengths=[2, 3])"
    assert repr(ma.documents([2, 3], causal=False)) == "documents(lengths=[2, 3], causal=False)"
    assert repr(ma.documents(torch.tensor([[2, 3], [5, 0]]))) == "documents(lengths=<int64 (2, 2)>)"
    assert repr(ma.documents(doc_ids=torch.zeros(7, dtype=torch.int32))) == "documents(doc_ids=<int64 (1, 7)>)"


def test_exactly_one_of_lengths_or_doc_ids():
    with pytest.raises(ValueError, match="lengths"):
        ma.documents()
    with pytest.raises(ValueError, match="doc_ids"):
        ma.documents([2, 2], doc_ids=[0, 0, 1, 1])


@pytest.mark.parametrize("lengths", [[3, -1, 2], torch.tensor([[2, 2], [5, -1]])])
def test_negative_lengths_raise(lengths):
    with pytest.raises(ValueError, match="lengths"):
        ma.documents(lengths)


def test_rows_with_different_totals_raise():
    with pytest.raises(ValueError, match="lengths"):
        ma.documents(torch.tensor([[2, 2], [3, 2]]))


@pytest.mark.parametrize("bad", [[1.5, 2.5], torch.tensor([2.0, 3.0]), torch.ones(2, 2, 2, dtype=torch.int64)])
def test_bad_lengths_type_or_shape_raise(bad):
    with pytest.raises((TypeError, ValueError), match="lengths"):
        ma.documents(bad)


@pytest.mark.parametrize("bad", [[0.0, 1.0], torch.zeros(1, 2, 3, dtype=torch.int64), torch.zeros(3, dtype=torch.bool)])
def test_bad_doc_ids_raise(bad):
    with pytest.raises((TypeError, ValueError), match="doc_ids"):
        ma.documents(doc_ids=bad)


@pytest.mark.parametrize("kv_len", [8, 10])
def test_lengths_not_summing_to_kv_len_raise_at_compile(kv_len):
    mask = ma.documents([3, 6])
    with pytest.raises(ValueError, match="lengths"):
        ma.compile_mask(mask, kv_len, kv_len, block_q=16, block_k=32)
    with pytest.raises(ValueError, match="kv_len"):
        ma.compile_mask(mask, 4, kv_len, block_q=16, block_k=32)
    ma.compile_mask(mask, 4, 9, block_q=16, block_k=32)


def test_doc_ids_of_wrong_length_raise_at_compile():
    with pytest.raises(ValueError, match="doc_ids"):
        ma.compile_mask(ma.documents(doc_ids=torch.zeros(2, 10, dtype=torch.int64)), 12, 12, block_q=16, block_k=32)

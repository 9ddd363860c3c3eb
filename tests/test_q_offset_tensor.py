"""q_offset as a (B,) tensor: each batch row's queries at their own absolute positions."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import maskattn as ma
from attention_checks import check_forward, rand_qkv
from helpers import check_block_map
from maskattn.kernels import torch_blocksparse

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _per_row_materialized(mask, lq, lk, offsets):
    return torch.cat([mask.materialize(lq, lk, q_offset=int(o))[:1].expand(1, -1, -1, -1) if mask.batch_size == 1
                      else mask.materialize(lq, lk, q_offset=int(o))[b:b + 1] for b, o in enumerate(offsets)])


MASKS = [ma.causal(), ma.sliding_window(9, 2), ma.causal() & ma.padding(torch.rand(3, 150) > 0.2),
         ma.tree([-1, 0, 0, 1], prefix=146), ma.prefix_lm(torch.tensor([3, 20, 7])) & ma.sliding_window(40)]


@settings(max_examples=25)
@given(st.sampled_from(range(len(MASKS))), st.integers(1, 150), st.lists(st.integers(-20, 160), min_size=3, max_size=3),
       st.sampled_from([(16, 32), (32, 32), (64, 64)]))
def test_map_rows_follow_their_offsets(which, lq, offs, block):
    mask = MASKS[which]
    lk = 150
    if which == 3:  # the tree needs its queries on its nodes: offsets that put rows on the tree
        lq = min(lq, 4)
        offs = [146 + (o % (5 - lq)) for o in offs]
    offsets = torch.tensor(offs)
    bm = ma.compile_mask(mask, lq, lk, q_offset=offsets, block_q=block[0], block_k=block[1])
    assert bm.batch == 3 and torch.equal(torch.as_tensor(bm.q_offset).cpu(), offsets)
    check_block_map(bm, _per_row_materialized(mask, lq, lk, offs))


@pytest.mark.parametrize("lq", [1, 5, 70])
def test_attention_with_per_batch_offsets(lq):
    lk = 150
    offsets = torch.tensor([lk - lq, 30, -2])
    mask = ma.causal() & ma.sliding_window(50)
    q, k, v = rand_qkv(3, 4, 2, lq, lk, 32, torch.float16, DEVICE)
    out, lse = ma.attention(q, k, v, mask, q_offset=offsets.to(DEVICE), return_lse=True)
    bm = ma.compile_mask(mask, lq, lk, q_offset=offsets)
    out_cpu, lse_cpu = torch_blocksparse.blocksparse_attention(q.cpu(), k.cpu(), v.cpu(), bm, 32 ** -0.5, None)
    for b, o in enumerate(offsets.tolist()):
        sl = slice(b, b + 1)
        check_forward(q[sl], k[sl], v[sl], mask, out=out[sl], lse=lse[sl], q_offset=o)
        check_forward(q[sl].cpu(), k[sl].cpu(), v[sl].cpu(), mask, out=out_cpu[sl], lse=lse_cpu[sl], q_offset=o)


def test_per_batch_offsets_rejected_clearly():
    q, k, v = rand_qkv(2, 2, 2, 10, 20, 16, torch.float32)
    with pytest.raises(ValueError, match="q_offset"):
        ma.attention(q, k, v, ma.causal(), q_offset=torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="q_offset"):
        ma.attention(q, k, v, ma.causal(), q_offset=torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="q_offset"):
        ma.compile_mask(ma.causal() & ma.padding(torch.ones(3, 20, dtype=torch.bool)), 10, 20,
                        q_offset=torch.tensor([1, 2]))

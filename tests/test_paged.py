"""paged_attention against attention() on the same keys gathered into contiguous K/V (CPU:
Triton interpreter and the block-sparse PyTorch path), and its input checks."""
import pytest
import torch

import maskattn as ma
from attention_checks import check_forward
from maskattn.kernels.config import interpreting

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _pages(b, hkv, d, page_size, max_pages, kv_lens, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    num_pages = b * max_pages + 3
    k_cache = torch.randn(num_pages, hkv, page_size, d, generator=g).to(dtype)
    v_cache = torch.randn(num_pages, hkv, page_size, d, generator=g).to(dtype)
    k_cache[-3:] = float("nan")  # pages nobody owns: never read
    table = torch.randperm(num_pages - 3, generator=g)[: b * max_pages].view(b, max_pages).to(torch.int32)
    return k_cache.to(DEVICE), v_cache.to(DEVICE), table.to(DEVICE)


def _gathered(cache, table, b, length):
    """(1, Hkv, length, D) keys of request b in logical order."""
    rows = cache[table[b].long()].permute(1, 0, 2, 3).reshape(cache.shape[1], -1, cache.shape[3])
    return rows[None, :, :length]


@pytest.mark.parametrize("interp", [True, False])
@pytest.mark.parametrize("lq,group,page_size,mask", [(1, 4, 16, None), (4, 2, 32, None), (3, 1, 64, "window"),
                                                     (5, 8, 16, "prefix")])
def test_paged_matches_gathered(lq, group, page_size, mask, interp, monkeypatch):
    if not interp:
        if DEVICE != "cpu":
            pytest.skip("the plain CPU path")
        import maskattn.paged as paged
        monkeypatch.setattr(paged, "interpreting", lambda: False)
    b, hkv, d, max_pages = 3, 2, 32, 7
    kv_lens = torch.tensor([100, 37, 7 * page_size][:b])
    kv_lens = torch.minimum(kv_lens, torch.tensor(max_pages * page_size))
    k_cache, v_cache, table = _pages(b, hkv, d, page_size, max_pages, kv_lens, torch.float16)
    for i in range(b):  # unwritten slots of owned pages hold garbage: never attended, never leak
        n = int(kv_lens[i])
        for pos in range(n, max_pages * page_size):
            page = int(table[i, pos // page_size])
            k_cache[page, :, pos % page_size] = float("nan")
            v_cache[page, :, pos % page_size] = float("inf")
    q = torch.randn(b, hkv * group, lq, d).half().to(DEVICE)
    m = {"window": ma.causal() & ma.sliding_window(20), "prefix": ma.prefix_lm(10), None: None}[mask]
    out, lse = ma.paged_attention(q, k_cache, v_cache, m, page_table=table, kv_lens=kv_lens.to(DEVICE),
                                  return_lse=True)
    for i in range(b):
        n = int(kv_lens[i])
        k, v = _gathered(k_cache, table, i, n), _gathered(v_cache, table, i, n)
        ref_mask = m if m is not None else ma.causal()
        check_forward(q[i:i + 1], k, v, ref_mask, out=out[i:i + 1], lse=lse[i:i + 1], q_offset=n - lq)


def test_paged_rejects_bad_input():
    k_cache = torch.randn(4, 2, 16, 32)
    table = torch.zeros(1, 2, dtype=torch.int32)
    q = torch.randn(1, 4, 1, 32)
    with pytest.raises(ValueError, match="page_table"):
        ma.paged_attention(q, k_cache, k_cache, page_table=table.float(), kv_lens=torch.tensor([3]))
    with pytest.raises(ValueError, match="kv_lens"):
        ma.paged_attention(q, k_cache, k_cache, page_table=table, kv_lens=torch.tensor([3.0]))
    with pytest.raises(ValueError, match="query rows"):
        ma.paged_attention(torch.randn(1, 4, 65, 32), k_cache, k_cache, page_table=table, kv_lens=torch.tensor([70]))
    with pytest.raises(ValueError, match="inference-only"):
        ma.paged_attention(q.requires_grad_(), k_cache, k_cache, page_table=table, kv_lens=torch.tensor([3]))
    with pytest.raises(ValueError, match="multiple"):
        ma.paged_attention(torch.randn(1, 3, 1, 32), k_cache, k_cache, page_table=table, kv_lens=torch.tensor([3]))


@pytest.mark.skipif(DEVICE == "cpu" and not interpreting(), reason="the kernels run on CUDA or under TRITON_INTERPRET=1")
@pytest.mark.parametrize("mask_name,lq", [(None, 1), ("causal", 1), ("long window", 1), (None, 4), ("causal", 4),
                                          ("long window", 4), ("long band", 4)])
def test_causal_steps_over_pages_build_no_map(mask_name, lq, monkeypatch):
    """One new token sees all its request's keys, several new tokens each the keys up to its own
    position (causal rows): no map (``unmasked_decode``), each request read up to its own kv_lens
    (NaN / Inf past it never leak), then the same call replayed on other key counts (GPU) still
    matching the gathered reference."""
    import maskattn.paged as paged
    monkeypatch.setattr(paged, "compile_single_row", lambda *a, **kw: pytest.fail("a map was built"))
    b, hkv, group, d, page_size, max_pages = 4, 2, 4, 64, 16, 9
    mask = {None: None, "causal": ma.causal(), "long window": ma.causal() & ma.sliding_window(1000),
            "long band": ma.sliding_window(1000)}[mask_name]
    for step, lens in enumerate(([1, 16, 17, 144], [2, 31, 100, 130], [143, 5, 64, 33])):
        lens = [max(n, lq) for n in lens]
        kv_lens = torch.tensor(lens)
        k_cache, v_cache, table = _pages(b, hkv, d, page_size, max_pages, kv_lens, torch.float32, seed=step)
        for i in range(b):
            for pos in range(lens[i], max_pages * page_size):
                page = int(table[i, pos // page_size])
                k_cache[page, :, pos % page_size] = float("nan")
                v_cache[page, :, pos % page_size] = float("inf")
        q = torch.randn(b, hkv * group, lq, d).to(DEVICE)
        out, lse = ma.paged_attention(q, k_cache, v_cache, mask, page_table=table, kv_lens=kv_lens.to(DEVICE),
                                      return_lse=True)
        for i in range(b):
            k, v = _gathered(k_cache, table, i, lens[i]), _gathered(v_cache, table, i, lens[i])
            check_forward(q[i:i + 1], k, v, ma.causal(), out=out[i:i + 1], lse=lse[i:i + 1],
                          q_offset=lens[i] - lq)

"""The transformers plug-in (``attn_implementation="maskattn"``).

* Mask parity: the "maskattn" mask function, reached through transformers' own ``create_*_mask``
  functions (so through each installed version's closures), gives exactly the eager mask for
  causal / sliding / bidirectional / chunked / packed / padded / cached (dynamic, sliding, static)
  settings, and compiles to a valid BlockMap.
* Tiny random models (Llama, Mistral with a sliding window, Qwen2 with sliding layers, Gemma 2
  with softcap and alternating layers, Gemma 3 text, ModernBERT): logits match sdpa (eager for
  Gemma 2) with left / right padding; packed sequences match each document alone; ``generate``
  with dynamic and static caches gives sdpa's logits; a training step gives sdpa's gradients.
* User masks passed as ``attention_mask`` (documents, longformer, tree verification with a cache,
  ``override(prefix_lm)``), and the error paths.

CPU tests run fp32 through maskattn's block-sparse PyTorch path; ``@pytest.mark.gpu`` tests run
the model checks in bf16 on CUDA (Triton kernels), against an fp32 reference with the error of
the reference implementation's own bf16 run as the yardstick.
"""
from __future__ import annotations

import copy
import inspect

import pytest
import torch

transformers = pytest.importorskip("transformers")

import maskattn  # noqa: E402
import maskattn.integrations.transformers as mt  # noqa: E402
from helpers import compile_and_check  # noqa: E402
from transformers import DynamicCache, StaticCache  # noqa: E402
from transformers import masking_utils as mu  # noqa: E402

VOCAB = 128


@pytest.fixture(autouse=True)
def _torch_path_on_cpu(monkeypatch):
    """CI runs the suite with TRITON_INTERPRET=1 (for the kernel tests). These tests check the
    integration, not the kernels: CPU tensors take maskattn's block-sparse PyTorch path (fast);
    CUDA tensors always take the Triton kernels."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
CUDA = torch.cuda.is_available()
gpu = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


# ---------------------------------------------------------------------------------------------
# Tiny configs. Every model is built from its own deep copy (from_config mutates the config).
# ---------------------------------------------------------------------------------------------
_COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
               max_position_embeddings=256, initializer_range=0.2, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def _llama():
    return transformers.LlamaConfig(num_hidden_layers=2, **_COMMON), transformers.LlamaForCausalLM


def _mistral():
    return transformers.MistralConfig(num_hidden_layers=2, sliding_window=8, **_COMMON), transformers.MistralForCausalLM


def _qwen2():
    cfg = transformers.Qwen2Config(num_hidden_layers=3, use_sliding_window=True, sliding_window=8, max_window_layers=1,
                                   layer_types=["full_attention", "sliding_attention", "sliding_attention"], **_COMMON)
    return cfg, transformers.Qwen2ForCausalLM


def _gemma2():
    cfg = transformers.Gemma2Config(num_hidden_layers=2, head_dim=16, query_pre_attn_scalar=16, sliding_window=8,
                                    attn_logit_softcapping=1.0, final_logit_softcapping=30.0,
                                    layer_types=["sliding_attention", "full_attention"], **_COMMON)
    return cfg, transformers.Gemma2ForCausalLM


def _gemma3():
    cfg = transformers.Gemma3TextConfig(num_hidden_layers=3, head_dim=16, query_pre_attn_scalar=16, sliding_window=8,
                                        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                                        **_COMMON)
    return cfg, transformers.Gemma3ForCausalLM


def _modernbert(global_every: int = 3):
    cfg = transformers.ModernBertConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                                        num_attention_heads=4, local_attention=8, global_attn_every_n_layers=global_every,
                                        initializer_range=0.2, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                        cls_token_id=1, sep_token_id=2)
    return cfg, transformers.ModernBertForMaskedLM


DECODERS = {"llama": _llama, "mistral": _mistral, "qwen2": _qwen2, "gemma2": _gemma2, "gemma3": _gemma3}
MODELS = {**DECODERS, "modernbert": _modernbert}
REFERENCE = {"gemma2": "eager"}  # sdpa refuses Gemma 2's softcap


def build(name: str, impl: str, device="cpu", dtype=torch.float32, seed: int = 0, make=None):
    cfg, cls = (make or MODELS[name])()
    torch.manual_seed(seed)
    model = cls._from_config(copy.deepcopy(cfg), attn_implementation=impl, dtype=dtype)
    return model.to(device).eval()


def pair(name: str, device="cpu", dtype=torch.float32, make=None):
    """The maskattn model and the reference model, with the same weights."""
    ours = build(name, "maskattn", device, dtype, make=make)
    ref = build(name, REFERENCE.get(name, "sdpa"), device, dtype, make=make)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def assert_close(x, y, rtol=1e-4, what=""):
    scale = max(float(y.abs().max()), 1e-6)
    err = float((x.float() - y.float()).abs().max())
    assert err <= rtol * scale + 1e-6, f"{what}: max abs error {err:.3e} (scale {scale:.3e})"


def tokens(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, length), generator=g)


def padding_mask(batch: int, length: int, side: str) -> torch.Tensor:
    am = torch.ones(batch, length, dtype=torch.long)
    if side == "left":
        am[0, :7] = 0
        am[1, :2] = 0
    elif side == "right":
        am[0, -7:] = 0
        am[1, -2:] = 0
    return am


# ---------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------
def test_registered():
    assert mt.register() == "maskattn"
    assert "maskattn" in transformers.AttentionInterface()
    assert "maskattn" in transformers.AttentionMaskInterface()
    assert transformers.AttentionInterface()["maskattn"] is mt.attention_function
    assert transformers.AttentionMaskInterface()["maskattn"] is mt.mask_function
    with pytest.raises(ValueError, match="flash"):
        mt.register("my_flash")


# ---------------------------------------------------------------------------------------------
# Mask parity with eager, through transformers' own create_*_mask functions
# ---------------------------------------------------------------------------------------------
def _mask_cfg(sliding=None, chunk=None):
    cfg = transformers.MistralConfig(num_hidden_layers=2, sliding_window=sliding, **_COMMON)
    if chunk is not None:
        cfg.attention_chunk_size = chunk
    return cfg


def _cache(cfg, kind, past, batch):
    if kind is None:
        return None
    cache = DynamicCache(config=cfg) if kind == "dynamic" else StaticCache(config=cfg, max_cache_len=64)
    if past:
        kv = torch.randn(batch, cfg.num_key_value_heads, past, 16)
        for layer in range(cfg.num_hidden_layers):
            cache.update(kv, kv, layer)
    return cache


def _make_masks(creator, cfg, batch, q_len, past, cache_kind, am, **kwargs):
    out = {}
    for impl in ("eager", "maskattn"):
        c = copy.deepcopy(cfg)
        c._attn_implementation = impl
        cache = _cache(c, cache_kind, past, batch)
        out[impl] = creator(config=c, inputs_embeds=torch.empty(batch, q_len, 0), attention_mask=am,
                            past_key_values=cache, **kwargs)
    return out["eager"], out["maskattn"]


def _check_parity(expected, ours, batch, q_len):
    assert isinstance(ours, mt.ModelMask), type(ours)
    kv = ours.kv_len
    exp = torch.ones(batch, 1, q_len, kv, dtype=torch.bool) if expected is None else expected == 0
    assert exp.shape == (batch, 1, q_len, kv)
    got = ours.mask.materialize(q_len, kv, q_offset=ours.q_offset).expand(batch, 1, q_len, kv)
    assert torch.equal(got, exp), f"{ours!r}\nmismatch at {(got != exp).nonzero()[:5].tolist()}"
    compile_and_check(ours.mask, q_len, kv, q_offset=ours.q_offset, block_q=16, block_k=32)


def _pad2(batch, total, left=(3, 0), right=(0, 2)):
    am = torch.ones(batch, total, dtype=torch.long)
    for b in range(batch):
        if left[b]:
            am[b, :left[b]] = 0
        if right[b]:
            am[b, total - right[b]:] = 0
    return am


_PACKED_POS = torch.tensor([list(range(13)) + list(range(20)) + list(range(7))])
PARITY = {
    # id: (creator, sliding, chunk, batch, q_len, past, cache, padding 2-D or None, extra kwargs)
    "causal": (mu.create_causal_mask, None, None, 2, 40, 0, None, None, {}),
    "causal-leftpad": (mu.create_causal_mask, None, None, 2, 40, 0, None, "left", {}),
    "causal-rightpad": (mu.create_causal_mask, None, None, 2, 40, 0, None, "right", {}),
    "causal-decode": (mu.create_causal_mask, None, None, 2, 1, 40, "dynamic", "left", {}),
    "causal-decode-nopad": (mu.create_causal_mask, None, None, 2, 1, 40, "dynamic", None, {}),
    "causal-decode-rightpad": (mu.create_causal_mask, None, None, 2, 1, 40, "dynamic", "right", {}),
    "causal-decode-4-nopad": (mu.create_causal_mask, None, None, 2, 4, 40, "dynamic", None, {}),
    "causal-chunked-prefill": (mu.create_causal_mask, None, None, 2, 17, 33, "dynamic", "left", {}),
    "causal-static-prefill": (mu.create_causal_mask, None, None, 2, 20, 0, "static", None, {}),
    "causal-static-decode": (mu.create_causal_mask, None, None, 2, 1, 20, "static", "left", {}),
    "causal-static-decode-nopad": (mu.create_causal_mask, None, None, 2, 1, 20, "static", None, {}),
    "causal-static-decode-rightpad": (mu.create_causal_mask, None, None, 2, 1, 20, "static", "right", {}),
    "causal-static-chunk": (mu.create_causal_mask, None, None, 2, 5, 20, "static", None, {}),
    "sliding": (mu.create_sliding_window_causal_mask, 8, None, 2, 40, 0, None, "left", {}),
    "sliding-decode-full": (mu.create_sliding_window_causal_mask, 8, None, 2, 1, 30, "dynamic", "left", {}),
    "sliding-chunk-full": (mu.create_sliding_window_causal_mask, 8, None, 2, 6, 30, "dynamic", "left", {}),
    "sliding-decode-filling": (mu.create_sliding_window_causal_mask, 8, None, 2, 1, 4, "dynamic", None, {}),
    "sliding-static-decode": (mu.create_sliding_window_causal_mask, 8, None, 2, 1, 30, "static", "left", {}),
    "sliding-static-filling": (mu.create_sliding_window_causal_mask, 8, None, 2, 2, 3, "static", None, {}),
    "packed-causal": (mu.create_causal_mask, None, None, 1, 40, 0, None, None, {"position_ids": _PACKED_POS}),
    "packed-sliding": (mu.create_sliding_window_causal_mask, 8, None, 1, 40, 0, None, None,
                       {"position_ids": _PACKED_POS}),
    "bidirectional": (mu.create_bidirectional_mask, None, None, 2, 40, 0, None, "right", {}),
    "bidirectional-nopad": (mu.create_bidirectional_mask, None, None, 2, 40, 0, None, None, {}),
    "bidirectional-sliding": (mu.create_bidirectional_sliding_window_mask, 4, None, 2, 40, 0, None, "right", {}),
    "chunked-attention": (mu.create_chunked_causal_mask, None, 8, 2, 40, 0, None, "left", {}),
    "or-function": (mu.create_causal_mask, None, None, 2, 40, 0, None, "left",
                    {"or_mask_function": lambda b, h, q, kv: kv < 3}),
    "or-function-vmap-only": (mu.create_causal_mask, None, None, 2, 40, 0, None, "left",  # fails when broadcast
                              {"or_mask_function": lambda b, h, q, kv: torch.stack([q, kv]).min() < 3}),
    "and-function-tensor": (mu.create_causal_mask, None, None, 2, 40, 0, None, None,
                            {"and_mask_function": (lambda keep: (lambda b, h, q, kv: keep[b, kv]))(
                                torch.arange(80).view(2, 40) % 3 != 1)}),
    "block-sequence-ids": (mu.create_causal_mask, None, None, 2, 40, 0, None, "left",
                           {"block_sequence_ids": torch.tensor([[-1] * 5 + [0] * 6 + [-1] * 9 + [1] * 12 + [-1] * 8,
                                                                [-1] * 12 + [0] * 20 + [-1] * 8])}),
}


@pytest.mark.parametrize("case", list(PARITY))
def test_mask_parity_with_eager(case):
    creator, sliding, chunk, batch, q_len, past, cache, pad, kwargs = PARITY[case]
    if "block_sequence_ids" in kwargs and "block_sequence_ids" not in inspect.signature(creator).parameters:
        pytest.skip("this transformers has no block_sequence_ids")
    am = None if pad is None else _pad2(batch, past + q_len, *(((3, 0), (0, 0)) if pad == "left" else ((0, 0), (0, 2))))
    expected, ours = _make_masks(creator, _mask_cfg(sliding, chunk), batch, q_len, past, cache, am, **kwargs)
    _check_parity(expected, ours, batch, q_len)
    if case in ("causal", "packed-causal", "sliding", "bidirectional-sliding"):  # the compact forms, not the fallback
        assert "transformers_mask_function" not in repr(ours.mask)


@pytest.mark.parametrize("case,kind,starts,ends", [
    ("causal-decode-nopad", "every", None, None), ("sliding-decode-filling", "every", None, None),
    ("causal-decode", "every", [3, 0], None),  # left padding: each row's first key, no map either
    ("causal-decode-rightpad", "map", None, None),
    ("causal-decode-4-nopad", "rows", None, None),  # several tokens: causal rows, the last one sees every key
    ("causal-chunked-prefill", "rows", [3, 0], None),  # 17 tokens after 33, left padding
    # a static cache's step: the keys up to each token's position (after left padding)
    ("causal-static-decode-nopad", "ends", None, [21, 21]), ("causal-static-decode", "ends", [3, 0], [21, 21]),
    ("causal-static-chunk", "rows", None, [25, 25]),
    ("causal-static-decode-rightpad", "map", None, None),  # the token's own key padded: a map
    # the dynamic sliding layer keeps the window's last keys only (the padding fell out of it)
    ("sliding-decode-full", "every", None, None), ("sliding-chunk-full", "map", None, None),
    ("sliding-static-decode", "every", None, None),  # a static sliding layer holds the window only
    ("bidirectional-nopad", "map", None, None)])
def test_decode_steps_seeing_every_key_compile_no_map(case, kind, starts, ends):
    """A short query block after a cache that may see every key (the window reaching key 0), or
    every key after its row's left padding, gets no BlockMap: its layers decode without a map. So
    does a causal block whose last token sees every key (``causal_rows``: each token up to its own
    position), and a causal block over a static cache, up to its positions (``kv_end``)."""
    creator, sliding, chunk, batch, q_len, past, cache, pad, kwargs = PARITY[case]
    am = None if pad is None else _pad2(batch, past + q_len, *(((3, 0), (0, 0)) if pad == "left" else ((0, 0), (0, 2))))
    _, ours = _make_masks(creator, _mask_cfg(sliding, chunk), batch, q_len, past, cache, am, **kwargs)
    assert ours.unmasked is (kind == "every") and ours.causal_rows is (kind == "rows")
    assert (None if ours.kv_start is None else ours.kv_start.tolist()) == starts
    assert (None if ours.kv_end is None else ours.kv_end.tolist()) == ends
    assert (ours.block_map is None) is (kind != "map")


def test_mask_fed_back_is_returned_unchanged():
    cfg = _mask_cfg()
    cfg._attn_implementation = "maskattn"
    cache = _cache(cfg, "static", 20, 2)
    first = mu.create_causal_mask(config=cfg, inputs_embeds=torch.empty(2, 1, 0), attention_mask=None,
                                  past_key_values=cache)
    again = mu.create_causal_mask(config=cfg, inputs_embeds=torch.empty(2, 1, 0), attention_mask=first.contiguous(),
                                  past_key_values=cache)
    assert again is first and first.kv_len == 64
    assert first.q_offset.tolist() == [20, 20] and first.kv_end.tolist() == [21, 21]  # a tensor position


def test_user_mask_is_anded_with_each_layer_pattern():
    """A plain Mask is combined with the layer's own pattern; override() replaces it."""
    user = maskattn.longformer(3, [0, 17])
    for creator, window, rule in ((mu.create_bidirectional_mask, None, lambda i, j: True),
                                  (mu.create_bidirectional_sliding_window_mask, 5, lambda i, j: abs(i - j) <= 5),
                                  (mu.create_causal_mask, None, lambda i, j: j <= i),
                                  (mu.create_sliding_window_causal_mask, 5, lambda i, j: i - 5 < j <= i)):
        cfg = _mask_cfg(window)
        cfg._attn_implementation = "maskattn"
        got = creator(config=cfg, inputs_embeds=torch.empty(1, 30, 0), attention_mask=user, past_key_values=None)
        i, j = torch.arange(30)[:, None], torch.arange(30)[None]
        want = user.materialize(30, 30)[0, 0] & torch.tensor([[rule(a, b) for b in range(30)] for a in range(30)])
        assert torch.equal(got.mask.materialize(30, 30, q_offset=got.q_offset)[0, 0], want), creator.__name__
        got = creator(config=cfg, inputs_embeds=torch.empty(1, 30, 0), attention_mask=mt.override(user),
                      past_key_values=None)
        assert torch.equal(got.mask.materialize(30, 30, q_offset=got.q_offset)[0, 0], user.materialize(30, 30)[0, 0])
        del i, j


@pytest.mark.parametrize("cache_kind,past,q_len", [("dynamic", 30, 5), ("static", 20, 5)])
def test_user_mask_reframed_for_sliding_and_static_caches(cache_kind, past, q_len):
    """A tree over the whole sequence, seen from a sliding-window layer whose cache dropped keys,
    or from a static cache longer than the sequence."""
    parents = [-1, 0, 0, 1, 2]
    user = maskattn.tree(parents, prefix=past)
    total = past + q_len
    full = user.materialize(q_len, total)[0, 0]  # (q_len, total), queries at past..total-1
    for creator, window in ((mu.create_causal_mask, None), (mu.create_sliding_window_causal_mask, 8)):
        cfg = _mask_cfg(window)
        cfg._attn_implementation = "maskattn"
        cache = _cache(cfg, cache_kind, past, 1)
        got = creator(config=cfg, inputs_embeds=torch.empty(1, q_len, 0), attention_mask=user, past_key_values=cache)
        shift = past + q_len - (got.q_offset + q_len)
        mat = got.mask.materialize(q_len, got.kv_len, q_offset=got.q_offset)[0, 0]
        want = torch.zeros(q_len, got.kv_len, dtype=torch.bool)
        n = min(got.kv_len, total - shift)
        want[:, :n] = full[:, shift:shift + n]
        if window is not None:
            i = torch.arange(q_len)[:, None] + past
            j = torch.arange(got.kv_len)[None] + shift
            want &= j > i - window
        assert torch.equal(mat, want), (cache_kind, creator.__name__, got)
        compile_and_check(got.mask, q_len, got.kv_len, q_offset=got.q_offset, block_q=16, block_k=32)


# ---------------------------------------------------------------------------------------------
# Tiny models on CPU (fp32)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["none", "left", "right"])
@pytest.mark.parametrize("name", list(MODELS))
def test_forward_matches_reference(name, side):
    ours, ref = pair(name)
    ids = tokens(2, 37)
    am = padding_mask(2, 37, side) if side != "none" else None
    with torch.no_grad():
        a = ours(ids, attention_mask=am).logits
        b = ref(ids, attention_mask=am).logits
    valid = torch.ones(2, 37, dtype=torch.bool) if am is None else am.bool()
    assert_close(a[valid], b[valid], what=f"{name}/{side}")


@pytest.mark.parametrize("name", list(DECODERS))
def test_packed_sequences_match_documents_alone(name):
    ours, ref = pair(name)
    lengths = [13, 20, 9]
    ids = tokens(1, sum(lengths))
    pos = torch.cat([torch.arange(n) for n in lengths])[None]
    with torch.no_grad():
        packed = ours(ids, position_ids=pos, use_cache=False).logits
        packed_ref = ref(ids, position_ids=pos, use_cache=False).logits
        start = 0
        for n in lengths:
            alone = ours(ids[:, start:start + n], use_cache=False).logits
            assert_close(packed[:, start:start + n], alone, what=f"{name} document at {start}")
            start += n
    assert_close(packed, packed_ref, what=f"{name} packed vs reference")


@pytest.mark.parametrize("cache", ["dynamic", "static"])
@pytest.mark.parametrize("name", ["mistral", "gemma2"])
def test_chunked_prefill_matches_full_forward(name, cache):
    """A prompt fed in chunks through a cache (sliding layers drop keys: kv_offset > 0) gives the
    logits of one full forward."""
    ours, _ = pair(name)
    ids = tokens(2, 30)
    am = padding_mask(2, 30, "left")
    with torch.no_grad():
        full = ours(ids, attention_mask=am).logits
        kv = DynamicCache(config=ours.config) if cache == "dynamic" else StaticCache(config=ours.config, max_cache_len=40)
        parts = []
        for start in range(0, 30, 10):
            parts.append(ours(ids[:, start:start + 10], attention_mask=am[:, :start + 10],
                              position_ids=torch.arange(start, start + 10)[None], past_key_values=kv,
                              use_cache=True).logits)
    valid = am.bool()
    assert_close(torch.cat(parts, 1)[valid], full[valid], what=f"{name}/{cache} chunked prefill")


def _generate(model, ids, am, cache, compiled=False):
    out = model.generate(ids, attention_mask=am, max_new_tokens=8, do_sample=False, cache_implementation=cache,
                         output_logits=True, return_dict_in_generate=True, pad_token_id=0, disable_compile=not compiled)
    return out.sequences, torch.stack(out.logits, 1)


@pytest.mark.parametrize("cache", ["dynamic", "static"])
@pytest.mark.parametrize("name", list(DECODERS))
def test_generate_matches_reference(name, cache):
    ours, ref = pair(name)
    ids = tokens(2, 14)
    am = padding_mask(2, 14, "left")
    seq_a, logits_a = _generate(ours, ids, am, cache)
    seq_b, logits_b = _generate(ref, ids, am, cache)
    assert torch.equal(seq_a, seq_b)
    assert_close(logits_a, logits_b, what=f"{name}/{cache}")


@pytest.mark.parametrize("padding", ["none", "left"])
@pytest.mark.parametrize("name,cache", [("llama", "dynamic"), ("llama", "static"), ("mistral", "dynamic")])
def test_generate_decodes_without_a_map(name, cache, padding, monkeypatch):
    """No padding or left padding: every decode step's layers take maskattn's path without a map,
    over a dynamic cache every key (after left padding), over a static cache the keys before the
    token's position + 1 (``kv_end``). (Mistral's sliding-window caches hold the window only: every
    key, the padding soon out of it.)"""
    ours, ref = pair(name)
    ids = tokens(2, 14)
    am = torch.ones_like(ids) if padding == "none" else padding_mask(2, 14, "left")
    made = []
    original = mt.mask_function
    monkeypatch.setitem(transformers.AttentionMaskInterface._global_mapping, "maskattn",
                        lambda *a, **kw: made.append(original(*a, **kw)) or made[-1])
    seq_a, logits_a = _generate(ours, ids, am, cache)
    seq_b, logits_b = _generate(ref, ids, am, cache)
    mapless = [m for m in made if m.block_map is None and (m.unmasked if cache == "dynamic" else m.kv_end is not None)]
    assert len(mapless) >= 7  # the 7 steps after the prompt (Mistral: of its full-attention masks)
    if name == "llama":
        assert all((m.kv_start is not None) is (padding == "left") for m in mapless)
    assert torch.equal(seq_a, seq_b)
    assert_close(logits_a, logits_b, what=f"{name}/{cache}, padding {padding}")


def test_assisted_generation_verifies_without_a_map(monkeypatch):
    """Speculative decoding (``generate(assistant_model=...)``, dynamic cache): the target model
    verifies each candidate sequence in one causal step of several tokens, whose last token sees
    the whole cache, so those steps need no map (``causal_rows``); the tokens are those of plain
    greedy decoding, and of sdpa's assisted generation."""
    made = []
    original = mt.mask_function
    monkeypatch.setitem(transformers.AttentionMaskInterface._global_mapping, "maskattn",
                        lambda *a, **kw: made.append(original(*a, **kw)) or made[-1])
    ids = tokens(1, 30)
    seqs = {}
    for impl in ("maskattn", "sdpa"):
        target, draft = build("llama", impl), build("llama", impl, seed=1)
        with torch.no_grad():
            seqs[impl] = target.generate(ids, max_new_tokens=12, do_sample=False, assistant_model=draft,
                                         pad_token_id=0)
            if impl == "maskattn":
                greedy = target.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=0)
    steps = [m for m in made if 1 < m.q_len < m.kv_len]
    assert steps and all(m.causal_rows and m.block_map is None for m in steps)
    assert torch.equal(seqs["maskattn"], greedy) and torch.equal(seqs["maskattn"], seqs["sdpa"])


def _labels(ids, am):
    """Labels that ignore padding, and the first real token after left padding too: its loss reads
    the logits of a padding query, a fully masked row (maskattn and sdpa give 0 there, eager a
    uniform average), which no implementation defines."""
    after_pad = torch.nn.functional.pad(am[:, :-1], (1, 0), value=1) == 0
    return ids.masked_fill((am == 0) | after_pad, -100)


@pytest.mark.parametrize("name,packed", [("llama", False), ("qwen2", True), ("gemma2", False), ("modernbert", False)])
def test_training_step_gradients_match(name, packed):
    ours, ref = pair(name)
    ours.train()
    ref.train()
    if packed:
        ids = tokens(1, 42)
        kwargs = {"position_ids": torch.cat([torch.arange(n) for n in (13, 20, 9)])[None], "use_cache": False}
        labels = ids
    else:
        ids = tokens(2, 37)
        am = padding_mask(2, 37, "right" if name == "modernbert" else "left")
        kwargs = {"attention_mask": am}
        labels = _labels(ids, am)
    for model in (ours, ref):
        model.zero_grad()
        model(ids, labels=labels, **kwargs).loss.backward()
    grads_b = dict(ref.named_parameters())
    for pname, p in ours.named_parameters():
        if p.grad is None:
            assert grads_b[pname].grad is None, pname
            continue
        assert_close(p.grad, grads_b[pname].grad, rtol=2e-4, what=f"{name} grad {pname}")


# ---------------------------------------------------------------------------------------------
# User masks in a model's forward
# ---------------------------------------------------------------------------------------------
def test_user_documents_mask_in_forward():
    ours, ref = pair("llama")
    lengths = [13, 20, 9]
    ids = tokens(1, 42)
    pos = torch.cat([torch.arange(n) for n in lengths])[None]
    with torch.no_grad():
        got = ours(ids, position_ids=pos, attention_mask=maskattn.documents(lengths=lengths), use_cache=False).logits
        want = ref(ids, position_ids=pos, use_cache=False).logits  # transformers' own packed detection
    assert_close(got, want, what="documents mask")


def test_user_longformer_mask_in_encoder():
    ours, ref = pair("modernbert", make=lambda: _modernbert(global_every=1))  # all layers global
    ids = tokens(2, 40)
    user = maskattn.longformer(3, [0, 21])
    with torch.no_grad():
        got = ours(ids, attention_mask=user).logits
        want = ref(ids, attention_mask=user.materialize(40, 40).expand(2, 1, 40, 40)).logits  # a 4-D custom mask
    assert_close(got, want, what="longformer mask")


def test_user_override_prefix_lm():
    ours, ref = pair("llama")
    ids = tokens(1, 30)
    user = maskattn.prefix_lm(11)
    with torch.no_grad():
        got = ours(ids, attention_mask=mt.override(user)).logits
        want = ref(ids, attention_mask=user.materialize(30, 30)).logits
        anded = ours(ids, attention_mask=user).logits  # ANDed with causal: plain causal attention
        causal = ref(ids).logits
    assert_close(got, want, what="override(prefix_lm)")
    assert_close(anded, causal, what="prefix_lm & causal")


@pytest.mark.parametrize("cache_kind", ["dynamic", "static"])
def test_tree_verification_with_cache(cache_kind):
    """Speculative decoding: a cache holds the prompt, the draft tree is verified in one forward."""
    ours, ref = pair("llama")
    prompt, parents = tokens(1, 10), [-1, 0, 0, 1, 1, 2, 5]
    draft = tokens(1, len(parents), seed=7)
    depth = [0] * len(parents)
    for t, p in enumerate(parents):
        depth[t] = 0 if p < 0 else depth[p] + 1
    pos = (10 + torch.tensor(depth))[None]
    tree = maskattn.tree(parents, prefix=10)
    results = []
    for model, mask in ((ours, tree), (ref, tree.materialize(len(parents), 10 + len(parents)))):
        cache = DynamicCache(config=model.config) if cache_kind == "dynamic" or model is ref else \
            StaticCache(config=model.config, max_cache_len=32)
        with torch.no_grad():
            model(prompt, past_key_values=cache, use_cache=True)
            results.append(model(draft, position_ids=pos, attention_mask=mask, past_key_values=cache).logits)
    assert_close(results[0], results[1], what=f"tree verification ({cache_kind})")
    # the deepest branch equals plain decoding of that branch
    branch = [0, 1, 4]  # node 4's ancestors: 0 -> 1 -> 4
    with torch.no_grad():
        seq = ours(torch.cat([prompt, draft[:, branch]], 1)).logits[:, 10:]
    assert_close(results[0][:, branch], seq, what="tree branch vs sequence")


# ---------------------------------------------------------------------------------------------
# The attention function itself and its errors
# ---------------------------------------------------------------------------------------------
class _Module(torch.nn.Module):
    is_causal = True


def _compiled_matches_eager(device, dtype, rtol):
    # torch.compile's default mode (inductor); the mask building and each layer's map compilation
    # are graph breaks, the attention op itself is traced
    torch._dynamo.reset()
    ours = build("llama", "maskattn", device, dtype)
    ids, am = tokens(2, 40).to(device), padding_mask(2, 40, "left").to(device)
    counters = torch._dynamo.utils.counters
    counters.clear()
    with torch.no_grad():
        eager = ours(ids, attention_mask=am).logits
        compiled = torch.compile(ours)(ids, attention_mask=am).logits
    valid = am.bool()
    assert_close(compiled[valid], eager[valid], rtol=rtol, what="compiled vs eager logits")
    # the only graph break is the mask function's host part (building and compiling the mask)
    reasons = list(counters["graph_break"])
    assert reasons and all("_mask_on_host" in r for r in reasons), reasons


@pytest.mark.parametrize("pad", [None, "left"])
def test_compiled_decode_step_breaks_only_at_the_mask(pad):
    """A compiled one-token step after a dynamic cache, whose token sees every key (after its row's
    left padding): the attention layers decode without a map inside the graph (a map would be a
    graph break in every layer); the mask function is the only graph break."""
    torch._dynamo.reset()
    model = build("llama", "maskattn", "cpu", torch.float32)
    ids = tokens(2, 41)
    am = torch.ones(2, 41, dtype=torch.long) if pad is None else padding_mask(2, 41, "left")
    counters = torch._dynamo.utils.counters
    with torch.no_grad():
        whole = model(ids, attention_mask=am).logits[:, -1]
        cache = model(ids[:, :40], attention_mask=am[:, :40], use_cache=True).past_key_values
        counters.clear()
        step = torch.compile(model)(ids[:, 40:], attention_mask=am, past_key_values=cache).logits[:, -1]
    assert_close(step, whole, rtol=1e-5, what="compiled decode step vs the whole sequence")
    reasons = list(counters["graph_break"])
    assert all("_mask_on_host" in r for r in reasons), reasons


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_static_cache_step_has_no_graph_break(backend):
    """Steps over a static cache without padding (generate's compiled decode step: one token; a
    speculative step: three), the whole model under torch.compile(fullgraph=True): the mask is a
    tensor op (each token sees the keys up to its own position) and the attention one custom op
    without a map; the logits are the eager ones."""
    torch._dynamo.reset()
    model = build("llama", "maskattn")
    ids = tokens(2, 24)
    with torch.no_grad():
        whole = model(ids).logits
        cache = StaticCache(config=model.config, max_cache_len=32)
        model(ids[:, :17], past_key_values=cache, use_cache=True)
        step = torch.compile(model, fullgraph=True, backend=backend)
        for p, n in ((17, 3), (20, 1), (21, 1), (22, 1), (23, 1)):
            logits = step(ids[:, p:p + n], past_key_values=cache, use_cache=True,
                          cache_position=torch.arange(p, p + n)).logits
            assert_close(logits, whole[:, p:p + n], rtol=1e-5, what=f"positions {p}..{p + n - 1}")


@pytest.mark.parametrize("padding", ["none", "left"])
def test_compiled_static_cache_generate_is_one_graph(padding):
    """``generate`` with a static cache compiles its decode step (Dynamo here, fullgraph) after
    masking each step eagerly: every step's mask has the same form (the keys before the token's
    position + 1, after left padding; no map, none at the last step either), so the step compiles
    once, and the tokens are eager generate's."""
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    model = build("llama", "maskattn")
    ids = tokens(2, 14)
    am = torch.ones_like(ids) if padding == "none" else padding_mask(2, 14, "left")
    compiled = transformers.CompileConfig(fullgraph=True, dynamic=False, backend="eager")
    compiled._compile_all_devices = True  # transformers compiles CUDA models only, unless told
    with torch.no_grad():
        seqs = [model.generate(ids, attention_mask=am, max_new_tokens=6, do_sample=False, pad_token_id=0,
                               cache_implementation="static", compile_config=compiled) for _ in range(2)]
        eager = model.generate(ids, attention_mask=am, max_new_tokens=6, do_sample=False, pad_token_id=0,
                               cache_implementation="static", disable_compile=True)
    assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert torch.equal(seqs[0], eager) and torch.equal(seqs[1], eager)


@gpu
@pytest.mark.gpu
def test_gpu_static_cache_step_in_a_cuda_graph():
    """generate's compiled decode step on CUDA: static cache, torch.compile(mode="reduce-overhead",
    fullgraph=True), replayed as a CUDA graph at four positions. Error-ratio rule as in
    test_gpu_compiled_model_matches_eager: ours may differ from its eager logits by at most twice
    what sdpa's compiled step differs from its eager one, plus a rounding floor."""
    ids = tokens(2, 24).to("cuda")
    errs, scale = {}, 0.0
    for impl in ("sdpa", "maskattn"):
        torch._dynamo.reset()
        model = build("llama", impl, "cuda", torch.bfloat16)
        with torch.no_grad():
            whole = model(ids).logits
            cache = StaticCache(config=model.config, max_cache_len=32)
            model(ids[:, :20], past_key_values=cache, use_cache=True)
            step = torch.compile(model, mode="reduce-overhead", fullgraph=True)
            err = 0.0
            for p in range(20, 24):
                logits = step(ids[:, p:p + 1], past_key_values=cache, use_cache=True,
                              cache_position=torch.tensor([p], device="cuda")).logits
                err = max(err, float((logits[:, 0].float() - whole[:, p].float()).abs().max()))
        errs[impl], scale = err, max(scale, float(whole[:, 20:].abs().max()))
    assert errs["maskattn"] <= 2 * errs["sdpa"] + 4 * torch.finfo(torch.bfloat16).eps * scale, errs


def test_compiled_model_matches_eager():
    _compiled_matches_eager("cpu", torch.float32, 1e-5)


@gpu
@pytest.mark.gpu
def test_gpu_compiled_model_matches_eager():
    # bf16: inductor fuses the layers around attention in other precisions than eager does, so
    # compiled and eager logits differ for any attention. Error-ratio rule: ours may differ by at
    # most twice what sdpa's compiled model differs from its eager one, plus a rounding floor.
    torch._dynamo.reset()
    ids, am = tokens(2, 40).to("cuda"), padding_mask(2, 40, "left").to("cuda")
    valid = am.bool()
    errs = {}
    for impl in ("sdpa", "maskattn"):
        model = build("llama", impl, "cuda", torch.bfloat16)
        with torch.no_grad():
            eager = model(ids, attention_mask=am).logits
            compiled = torch.compile(model)(ids, attention_mask=am).logits
        errs[impl] = float((compiled[valid].float() - eager[valid].float()).abs().max())
        scale = float(eager[valid].abs().max())
    assert errs["maskattn"] <= 2 * errs["sdpa"] + 4 * torch.finfo(torch.bfloat16).eps * scale, errs


def test_attention_function_layout_softcap_and_gqa():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 9, 16, generator=g) * 3
    k = torch.randn(2, 2, 9, 16, generator=g) * 3
    v = torch.randn(2, 2, 9, 16, generator=g)
    out, weights = mt.attention_function(_Module(), q, k, v, None, scaling=0.3, softcap=2.0)
    assert weights is None and out.shape == (2, 9, 4, 16) and out.is_contiguous()
    kr, vr = k.repeat_interleave(2, 1), v.repeat_interleave(2, 1)
    s = q @ kr.transpose(-1, -2) * 0.3
    s = 2.0 * torch.tanh(s / 2.0)
    s = s.masked_fill(~torch.ones(9, 9, dtype=torch.bool).tril(), float("-inf"))
    want = (s.softmax(-1) @ vr).transpose(1, 2)
    assert_close(out, want, what="softcap + GQA")


def test_dropout_in_training_raises():
    def make():
        cfg, cls = _llama()
        cfg.attention_dropout = 0.1
        return cfg, cls
    model = build("llama", "maskattn", make=make)
    ids = tokens(1, 12)
    with torch.no_grad():
        model(ids)  # eval: dropout is not asked for
    model.train()
    with pytest.raises(ValueError, match="dropout"):
        model(ids)


def test_unsupported_arguments_raise():
    q = torch.randn(1, 2, 4, 16)
    with pytest.raises(NotImplementedError, match="s_aux"):
        mt.attention_function(_Module(), q, q, q, None, s_aux=torch.zeros(2))
    with pytest.raises(NotImplementedError, match="bias"):
        mt.attention_function(_Module(), q, q, q, torch.full((1, 1, 4, 4), 0.5))


# ---------------------------------------------------------------------------------------------
# GPU: the same model checks in bf16 on CUDA (Triton kernels)
# ---------------------------------------------------------------------------------------------
def _gpu_yardstick(ours_bf16, ref_bf16, ref_fp32, factor, what):
    """Our bf16 error to the fp32 reference <= factor x the reference implementation's own bf16
    error, plus a floor (bf16 rounding of the outputs)."""
    ref32 = ref_fp32.float()
    err = float((ours_bf16.float() - ref32).abs().max())
    base = float((ref_bf16.float() - ref32).abs().max())
    floor = 2 ** -7 * float(ref32.abs().max())
    assert err <= factor * base + floor, f"{what}: error {err:.3e}, reference bf16 error {base:.3e}, floor {floor:.3e}"


def _gpu_models(name):
    ours, ref = pair(name, "cuda", torch.bfloat16)
    ref32 = build(name, REFERENCE.get(name, "sdpa"), "cuda", torch.float32)
    ref32.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
    return ours, ref, ref32


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("name", list(MODELS))
def test_gpu_forward_bf16(name, side):
    ours, ref, ref32 = _gpu_models(name)
    ids = tokens(2, 300).cuda()  # several 128-tiles, windows of 8
    am = padding_mask(2, 300, side).cuda()
    with torch.no_grad():
        out = [m(ids, attention_mask=am).logits for m in (ours, ref, ref32)]
    valid = am.bool()
    _gpu_yardstick(out[0][valid], out[1][valid], out[2][valid], 2.0, f"{name}/{side}")


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("name", list(DECODERS))
def test_gpu_packed_bf16(name):
    ours, ref, ref32 = _gpu_models(name)
    lengths = [130, 45, 200, 9]
    ids = tokens(1, sum(lengths)).cuda()
    pos = torch.cat([torch.arange(n) for n in lengths])[None].cuda()
    with torch.no_grad():
        out = [m(ids, position_ids=pos, use_cache=False).logits for m in (ours, ref, ref32)]
    _gpu_yardstick(out[0], out[1], out[2], 2.0, f"{name} packed")


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("cache", ["dynamic", "static"])
@pytest.mark.parametrize("name", list(DECODERS))
def test_gpu_generate_bf16(name, cache):
    """bf16 greedy decoding may diverge at near-ties, so score our generation teacher-forced: its
    step logits against full-sequence forwards of the reference models on our tokens."""
    ours, ref, ref32 = _gpu_models(name)
    ids, am = tokens(2, 150).cuda(), padding_mask(2, 150, "left").cuda()
    seq, logits = _generate(ours, ids, am, cache)
    full_am = torch.cat([am, torch.ones(2, seq.shape[1] - 150, dtype=am.dtype, device="cuda")], 1)
    with torch.no_grad():
        want = [m(seq, attention_mask=full_am).logits[:, 149:-1] for m in (ref, ref32)]
    _gpu_yardstick(logits, want[0], want[1], 2.0, f"{name}/{cache}")


@gpu
@pytest.mark.gpu
def test_gpu_static_cache_generate_compiled():
    """generate with a static cache on CUDA compiles its decode step (transformers' auto-compile:
    inductor, CUDA graphs): maskattn's step is one graph, and its logits pass the teacher-forced
    yardstick of test_gpu_generate_bf16."""
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    ours, ref, ref32 = _gpu_models("llama")
    ids, am = tokens(2, 150).cuda(), padding_mask(2, 150, "left").cuda()
    seq, logits = _generate(ours, ids, am, "static", compiled=True)
    assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])
    full_am = torch.cat([am, torch.ones(2, seq.shape[1] - 150, dtype=am.dtype, device="cuda")], 1)
    with torch.no_grad():
        want = [m(seq, attention_mask=full_am).logits[:, 149:-1] for m in (ref, ref32)]
    _gpu_yardstick(logits, want[0], want[1], 2.0, "llama/static, compiled")


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("name", ["llama", "qwen2", "gemma2", "modernbert"])
def test_gpu_training_step_bf16(name):
    ours, ref, ref32 = _gpu_models(name)
    ids = tokens(2, 300).cuda()
    am = padding_mask(2, 300, "right" if name == "modernbert" else "left").cuda()
    labels = _labels(ids, am)
    grads = []
    for m in (ours, ref, ref32):
        m.train()
        m.zero_grad()
        m(ids, attention_mask=am, labels=labels).loss.backward()
        grads.append({k: p.grad for k, p in m.named_parameters() if p.grad is not None})
    for k in grads[2]:
        _gpu_yardstick(grads[0][k], grads[1][k], grads[2][k], 3.0, f"{name} grad {k}")

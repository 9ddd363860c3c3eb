"""Session 45 (CPU): static-cache generate under transformers' auto-compile (backend "eager",
Dynamo only), a tiny Llama, for one attn_implementation: tokens, Dynamo's graph-break and frame
counters, and the tokens of the same generate without compile.

    TORCH_LOGS=graph_breaks,recompiles python static_compile_cpu.py maskattn|sdpa [layers]
"""
import sys, time, torch, transformers
from transformers import LlamaConfig, LlamaForCausalLM, GenerationConfig, CompileConfig
import maskattn.integrations.transformers  # noqa
impl = sys.argv[1]
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=int(sys.argv[2]) if len(sys.argv) > 2 else 4,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
m = LlamaForCausalLM(cfg).eval()
m.set_attn_implementation(impl)
prompt = torch.randint(0, 128, (2, 24))
cc = CompileConfig(fullgraph=False, dynamic=False, backend="eager")
cc._compile_all_devices = True
gc = GenerationConfig(max_new_tokens=6, min_new_tokens=6, do_sample=False, cache_implementation="static", pad_token_id=0,
                      compile_config=cc)
import torch._dynamo
torch._dynamo.config.cache_size_limit = 1000
torch._dynamo.config.recompile_limit = 1000
import os
torch._dynamo.config.allow_unspec_int_on_nn_module = bool(os.environ.get("UNSPEC"))
with torch.no_grad():
    t = time.time(); out = m.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=gc); print(impl, "first", time.time() - t)
    t = time.time(); out2 = m.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=gc); print(impl, "second", time.time() - t)
print(impl, out[0, -6:].tolist())
eager_cfg = GenerationConfig(max_new_tokens=6, min_new_tokens=6, do_sample=False, cache_implementation="static",
                             pad_token_id=0, disable_compile=True)
with torch.no_grad():
    ref = m.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=eager_cfg)
print(impl, "compiled tokens equal eager ones:", torch.equal(out, ref))
from torch._dynamo.utils import counters
print("graph_break", dict(counters["graph_break"]))
print("frames", dict(counters["frames"]), "stats", {k: v for k, v in counters["stats"].items()})

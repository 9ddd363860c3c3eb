import torch, maskattn
import maskattn.integrations.transformers as mt          # registers attn_implementation="maskattn"
from transformers import LlamaConfig, LlamaForCausalLM

device = "cuda" if torch.cuda.is_available() else "cpu"
config = LlamaConfig(vocab_size=1000, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                     num_attention_heads=8, num_key_value_heads=4, attn_implementation="maskattn")
model = LlamaForCausalLM(config).to(device).eval()
ids = torch.randint(0, 1000, (1, 64), device=device)

out = model.generate(ids, max_new_tokens=8, do_sample=False)              # causal + KV cache
docs = maskattn.documents(lengths=[20, 30, 14]).to(device)                 # your own mask, ANDed with
logits = model(ids, attention_mask=docs).logits                            # each layer's causal pattern
prefix = model(ids, attention_mask=mt.override(maskattn.prefix_lm(16))).logits  # exactly this mask
print(out.shape, logits.shape, prefix.shape)

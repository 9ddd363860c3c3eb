"""DuoAttention: retrieval heads attend causally, streaming heads to a window plus 4 sinks."""
import torch
import maskattn as ma
from _gallery import show

L, H = 256, 4
streaming = ma.causal() & (ma.sliding_window(31) | ma.padding(torch.arange(L)[None] < 4))
retrieval = ma.causal()
heads = [retrieval, streaming, streaming, retrieval]
is_stream = torch.tensor([False, True, True, False]).view(1, H, 1, 1)
show("duo_attention_heads", ma.per_head(heads),
     lambda b, h, i, j: (j <= i) & (~is_stream | (i - j <= 31) | (j < 4)), L)

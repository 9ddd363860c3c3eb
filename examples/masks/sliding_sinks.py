"""StreamingLLM: a causal window of 64 keys plus 4 attention-sink tokens."""
import torch
import maskattn as ma
from _gallery import show

L = 256
sinks = ma.padding(torch.arange(L)[None] < 4)
show("sliding_sinks", ma.causal() & (ma.sliding_window(63) | sinks),
     lambda b, h, i, j: (j <= i) & ((i - j <= 63) | (j < 4)), L)

"""Llama 4 chunked attention: causal within fixed chunks (64 tokens here, 8192 in the model)."""
import maskattn as ma
from _gallery import show

L, C = 256, 64
chunks = ma.block_sparse(__import__("torch").eye(L // C, dtype=bool), C, C)
show("llama4_chunked", ma.causal() & chunks, lambda b, h, i, j: (j <= i) & (i // C == j // C), L)

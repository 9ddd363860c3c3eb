"""Causal attention over a left-padded batch (Hugging Face's 2-D attention_mask)."""
import torch
import maskattn as ma
from _gallery import show

L = 256
valid = torch.ones(2, L, dtype=torch.bool)
valid[1, :100] = False  # row 1: 100 pad tokens on the left
show("causal_padding", ma.causal() & ma.padding(valid), lambda b, h, i, j: (j <= i) & valid[b, j], L)

"""Packed sequences: causal attention within each document."""
import torch
import maskattn as ma
from _gallery import show

L, lengths = 256, [40, 100, 16, 100]
doc = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
show("packed_documents", ma.documents(lengths), lambda b, h, i, j: (doc[i] == doc[j]) & (j <= i), L)

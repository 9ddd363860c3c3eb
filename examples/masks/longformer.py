"""Longformer: a symmetric local window plus global tokens."""
import torch
import maskattn as ma
from _gallery import show

L, w, glob = 256, 16, [0, 1, 128]
g = torch.zeros(L, dtype=torch.bool)
g[glob] = True
show("longformer", ma.longformer(w, glob), lambda b, h, i, j: ((i - j).abs() <= w) | g[i] | g[j], L)

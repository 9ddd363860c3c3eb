"""Medusa / EAGLE tree verification: 8 draft tokens as a tree after a 248-token prompt."""
import torch
import maskattn as ma
from _gallery import show

parents = [-1, 0, 0, 1, 1, 2, 3, 5]
P, L = 248, 256
anc = torch.eye(8, dtype=torch.bool)
for t, p in enumerate(parents):
    if p >= 0:
        anc[t] |= anc[p]
def rule(b, h, i, j):
    ti, tj = (i - P).clamp(0, 7), (j - P).clamp(0, 7)
    return ((j < P) & (j <= i)) | ((i >= P) & (j >= P) & anc[ti, tj])
show("medusa_tree", ma.tree(parents, prefix=P), rule, L)

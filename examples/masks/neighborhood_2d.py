"""2-D neighborhood attention (NATTEN) on a 16 x 16 image, 5 x 5 window."""
import torch
import maskattn as ma
from _gallery import show

S, K = 16, 5
def rule(b, h, i, j):
    ok = torch.ones_like(i - j, dtype=torch.bool)
    for st in (S, 1):
        ci, cj = (i // st) % S, (j // st) % S
        start = (ci - K // 2).clamp(0, S - K)
        ok &= (cj >= start) & (cj < start + K)
    return ok
show("neighborhood_2d", ma.neighborhood((S, S), K), rule, S * S)

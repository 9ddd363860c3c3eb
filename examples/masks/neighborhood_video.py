"""Video neighborhood attention: 4 frames of 8 x 8, window (3, 5, 5), causal in time."""
import torch
import maskattn as ma
from _gallery import show

T, S = 4, 8
kern = (3, 5, 5)
def rule(b, h, i, j):
    ok = torch.ones_like(i - j, dtype=torch.bool)
    for (n, k, st) in zip((T, S, S), kern, (S * S, S, 1)):
        ci, cj = (i // st) % n, (j // st) % n
        start = (ci - k // 2).clamp(0, n - k)
        ok &= (cj >= start) & (cj < start + k)
    return ok & (j // (S * S) <= i // (S * S))
show("neighborhood_video", ma.neighborhood((T, S, S), kern, causal=True), rule, T * S * S)

"""BigBird: window, global and random blocks (block size 32) as one block-sparse layout."""
import torch
import maskattn as ma
from _gallery import show

L, B = 256, 32
n = L // B
layout = (torch.arange(n)[:, None] - torch.arange(n)[None, :]).abs() <= 1  # window blocks
layout[0, :] = layout[:, 0] = True  # global blocks
layout |= torch.rand(n, n, generator=torch.Generator().manual_seed(0)) < 0.15  # random blocks
show("bigbird", ma.block_sparse(layout, B, B), lambda b, h, i, j: layout[i // B, j // B], L)

"""Gemma 3: causal text, bidirectional attention inside each image's token span."""
import torch
import maskattn as ma
from _gallery import show

L = 256
image = torch.full((L,), -1)
image[40:104], image[150:214] = 0, 1  # two images of 64 tokens
same_image = ma.documents(doc_ids=torch.where(image >= 0, image, torch.arange(L) + 10), causal=False)
is_image = ma.query_mask(image >= 0)
show("gemma3_image_blocks", ma.causal() | (is_image & same_image),
     lambda b, h, i, j: (j <= i) | ((image[i] >= 0) & (image[i] == image[j])), L)

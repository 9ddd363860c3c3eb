"""A dilated causal window: every 4th key within the last 128."""
import maskattn as ma
from _gallery import show

L = 256
show("dilated_window", ma.sliding_window(128, dilation=4), lambda b, h, i, j: (j <= i) & (i - j <= 128) & ((i - j) % 4 == 0), L)

"""The learned segmenter's network: a small 2D U-Net with three output classes.

Classes per pixel: 0 background (pore space, matrix, substrate), 1 crystal interior, 2 crystal
boundary (the 2-px inner rim of every crystal, so touching crystals are kept apart). Base 8,
depth 4 is 0.49 M parameters (1 MB in float16) and runs a 1024 x 1024 image in about 1 s on one
CPU thread (bench/learned_segmenter_probe/README.md, where it was chosen over StarDist and
Cellpose by measured F1 on the real images).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: output channels, in order
CLASS_NAMES = ("background", "interior", "boundary")


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True))


class CrystalUNet(nn.Module):
    """U-Net of ``depth`` poolings with ``base * 2**level`` channels per level; input (N, 1, Y, X)
    with Y and X multiples of ``2**depth``; output logits (N, 3, Y, X)."""

    def __init__(self, base: int = 8, depth: int = 4) -> None:
        super().__init__()
        self.base, self.depth = base, depth
        channels = [base * 2 ** level for level in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(1, channels[0])]
                                  + [_double_conv(channels[i], channels[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(channels[i + 1], channels[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.dec = nn.ModuleList([_double_conv(2 * channels[i], channels[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(channels[0], len(CLASS_NAMES), 1)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this."""
        return 2 ** self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([skips.pop(), up(x)], 1))
        return self.head(x)

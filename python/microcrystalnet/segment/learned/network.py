"""The learned segmenter's network: a small 2D U-Net with three output classes.

Classes per pixel: 0 background (pore space, matrix, substrate), 1 crystal interior, 2 crystal
boundary (the 2-px inner rim of every crystal, so touching crystals are kept apart). Base 8,
depth 4 is 0.49 M parameters (1 MB in float16) and runs a 1024 x 1024 image in about 1 s on one
CPU thread (bench/learned_segmenter_probe/README.md, where it was chosen over StarDist and
Cellpose by measured F1 on the real images; base 12 trained the same way was no better on them,
BENCHMARKS.md, twelfth round).
"""

from __future__ import annotations

import copy

from ...frameworks import import_torch

torch = import_torch()
nn, F = torch.nn, torch.nn.functional
fuse_conv_bn_eval = torch.nn.utils.fusion.fuse_conv_bn_eval

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

    def fused_for_inference(self) -> CrystalUNet:
        """A copy for prediction that computes the same logits (to float rounding, about 1e-6) in
        about half the time on a CPU (bench/bench_learned_speed.py): every batch normalisation
        folded into the convolution before it (with its running statistics: evaluation only),
        weights in channels-last order. This network is left as it is."""
        fused = copy.deepcopy(self).eval()
        for block in [*fused.down, *fused.dec]:
            layers = list(block)
            for index, (layer, following) in enumerate(zip(layers, layers[1:])):
                if isinstance(layer, nn.Conv2d) and isinstance(following, nn.BatchNorm2d):
                    block[index], block[index + 1] = fuse_conv_bn_eval(layer, following), nn.Identity()
        return fused.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([skips.pop(), up(x)], 1))
        return self.head(x)

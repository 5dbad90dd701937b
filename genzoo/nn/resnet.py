"""ResNet GAN networks: the generator and discriminator of SNGAN and WGAN-GP.

Miyato et al., "Spectral Normalization for GANs" (2018), appendix B.4 (Tables 4 and 6), after
Gulrajani et al., "Improved Training of Wasserstein GANs" (2017), appendix F:
- generator: z -> dense -> b x b map, then residual "up" blocks
  (BN, ReLU, nearest-neighbour upsample x2, 3x3 conv, BN, ReLU, 3x3 conv; shortcut: upsample,
  1x1 conv), then BN, ReLU, 3x3 conv to the image channels and Tanh;
- discriminator: residual "down" blocks (ReLU, 3x3 conv, ReLU, 3x3 conv, 2x2 average pool;
  shortcut: 1x1 conv, average pool), the first one "optimised" (conv, ReLU, conv, pool; shortcut:
  pool, 1x1 conv: no ReLU on the raw image), one block without down-sampling, a final ReLU and
  global SUM pooling to a feature vector; the GAN puts its linear head(s) on top.

Sizes: an image of side s = b * 2^k (4 <= b <= 7, see `base_and_doublings`) takes k up blocks
from b x b and k down blocks back. Channels double per resolution step as in SNGAN's ImageNet
ResNet (Table 6, ch = width): the generator starts at width * 2^(k-1) channels and ends its last
block at `width`; the discriminator starts at `width` and ends at width * 2^(k-1) = feature_dim.
At 32 px with width 64 that is 256 -> 128 -> 64 -> 64 (G) and 64 -> 128 -> 256 (D).

Spectral normalisation is not built in: the GAN applies
`torch.nn.utils.parametrizations.spectral_norm` from outside to every Conv2d and Linear, which
are all plain modules here. The discriminator's optional `norm` ("layer" = GroupNorm(1, C), the
layer norm of WGAN-GP's critic, or "batch") goes before each ReLU inside the residual branches.
Initialisation as SNGAN's code: Xavier-uniform with gain sqrt(2) in the residual branches, gain 1
on shortcuts, the dense layer and the output conv; zero biases.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.errors import ConfigError
from genzoo.nn.dcgan import base_and_doublings

NORMS = ("none", "layer", "batch")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # normalise over (C, H, W) per sample: layer norm
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"unknown discriminator norm {kind!r}; choose one of: {', '.join(NORMS)}.")


def _conv(in_channels: int, out_channels: int, kernel: int, gain: float) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel, 1, kernel // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    nn.init.zeros_(conv.bias)
    return conv


class UpBlock(nn.Module):
    """(B, C_in, h, w) -> (B, C_out, 2h, 2w): BN, ReLU, up, conv3, BN, ReLU, conv3 + up, conv1."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(in_channels), nn.BatchNorm2d(out_channels)
        self.conv1 = _conv(in_channels, out_channels, 3, math.sqrt(2))
        self.conv2 = _conv(out_channels, out_channels, 3, math.sqrt(2))
        self.shortcut = _conv(in_channels, out_channels, 1, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")  # (B, C_in, 2h, 2w)
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))  # (B, C_out, 2h, 2w)
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DownBlock(nn.Module):
    """(B, C_in, h, w) -> (B, C_out, h/2, w/2), or same size with down=False.

    optimized=True is SNGAN's first block: conv, ReLU, conv, pool (no activation on the image),
    shortcut pool then 1x1 conv; otherwise ReLU, conv, ReLU, conv, pool, shortcut 1x1 conv then
    pool. The shortcut is the identity when neither channels nor size change."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "none", down: bool = True,
                 optimized: bool = False) -> None:
        super().__init__()
        self.down, self.optimized = down, optimized
        self.norm1 = nn.Identity() if optimized else _norm(norm, in_channels)
        self.conv1 = _conv(in_channels, out_channels, 3, math.sqrt(2))
        self.norm2 = _norm(norm, out_channels)
        self.conv2 = _conv(out_channels, out_channels, 3, math.sqrt(2))
        learned = down or in_channels != out_channels
        self.shortcut = _conv(in_channels, out_channels, 1, 1.0) if learned else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.optimized else F.relu(self.norm1(x))
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))  # (B, C_out, h, w)
        if self.optimized:
            return F.avg_pool2d(h, 2) + self.shortcut(F.avg_pool2d(x, 2))
        s = self.shortcut(x)
        return (F.avg_pool2d(h, 2) + F.avg_pool2d(s, 2)) if self.down else h + s


class ResNetGenerator(nn.Module):
    """z (B, latent_dim) -> image (B, channels, s, s) in [-1, 1]."""

    def __init__(self, latent_dim: int, image_size: int, channels: int, width: int) -> None:
        super().__init__()
        base, doublings = base_and_doublings(image_size)
        widths = [width * 2 ** (doublings - 1 - i) for i in range(doublings)]  # block outputs, halving to `width`
        self.latent_dim, self.base, self.start = latent_dim, base, widths[0]
        self.dense = nn.Linear(latent_dim, widths[0] * base * base)
        nn.init.xavier_uniform_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)
        self.blocks = nn.Sequential(*(UpBlock(c_in, c_out) for c_in, c_out in zip(widths[:1] + widths[:-1], widths)))
        self.out_norm = nn.BatchNorm2d(width)
        self.out_conv = _conv(width, channels, 3, 1.0)

    def forward(self, z: Tensor) -> Tensor:
        h = self.dense(z).view(-1, self.start, self.base, self.base)  # (B, width * 2^(k-1), b, b)
        h = self.blocks(h)  # (B, width, s, s)
        return self.out_conv(F.relu(self.out_norm(h))).tanh()  # (B, channels, s, s)


class ResNetDiscriminatorBody(nn.Module):
    """image (B, channels, s, s) -> features (B, feature_dim) after ReLU and global sum pooling."""

    def __init__(self, image_size: int, channels: int, width: int, norm: str = "none") -> None:
        super().__init__()
        _norm(norm, 1)  # an unknown norm fails here, with the allowed names
        _, doublings = base_and_doublings(image_size)
        widths = [width * 2**i for i in range(doublings)]  # doubling after each down block
        blocks = [DownBlock(channels, widths[0], norm, optimized=True)]
        blocks += [DownBlock(c_in, c_out, norm) for c_in, c_out in zip(widths[:-1], widths[1:])]
        blocks.append(DownBlock(widths[-1], widths[-1], norm, down=False))  # at b x b, as SNGAN's last block
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = widths[-1]

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.blocks(x)).sum(dim=(2, 3))  # (B, F, b, b) -> (B, F)

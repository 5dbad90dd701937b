"""Building blocks of the image-to-image translation families (pix2pix, CycleGAN, StarGAN).

- `PatchDiscriminator`: the PatchGAN of Isola et al., "Image-to-Image Translation with Conditional
  Adversarial Networks" (2017), Sec. 3.2.2 and Appendix 6.1.2: C64-C128-C256-C512 for the 70 x 70
  PatchGAN, 4 x 4 convolutions, stride 2 except the last two layers, LeakyReLU 0.2, no norm on the
  first layer, then a convolution to one score per patch. With n stride-2 layers the receptive field
  of one score is 9 * 2^n - 2 pixels (n = 1: 16, 2: 34, 3: 70, 5: 286); `patch_layers` picks n so
  that the patch covers the share of the image the paper's 70 x 70 patch covers of 256 x 256.
  CycleGAN (Zhu et al. 2017, Sec. 4) uses the same 70 x 70 PatchGAN.
- `ResNetTranslator`: the generator of Johnson et al., "Perceptual Losses for Real-Time Style
  Transfer and Super-Resolution" (2016), as CycleGAN's Appendix 7.2 writes it: c7s1-64, d128, d256,
  R256 x blocks, u128, u64, c7s1-3 (reflection padding, instance norm, ReLU, Tanh), and as StarGAN
  (Choi et al. 2018, Appendix, Table 4) writes it: 4 x 4 sampling convolutions, zero padding and
  affine instance norm. Transposed convolutions are given the size of the matching down-sampled map,
  so odd sides (28 -> 14 -> 7 -> 14 -> 28, 30 -> 15 -> 8 -> 15 -> 30) come back to the input size.
- `constant_then_linear`: CycleGAN's learning-rate schedule (Sec. 4: "keep the same learning rate for
  the first 100 epochs and linearly decay the rate to zero over the next 100 epochs"), also StarGAN's.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

Norm = Literal["batch", "instance", "none"]


def norm_layer(kind: Norm, channels: int, affine: bool = False) -> nn.Module:
    """Batch norm, instance norm (affine=False as the pix2pix/CycleGAN code, True as StarGAN's), or none."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=affine)
    return nn.Identity()


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """pix2pix and CycleGAN (Isola et al. 2017, Sec. 3.3): weights from N(0, 0.02), norm scales from N(1, 0.02)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm2d, nn.InstanceNorm2d)) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, std)
            nn.init.zeros_(layer.bias)


# ----------------------------------------------------------------------------- PatchGAN


def receptive_field(layers: int) -> int:
    """Side of the input patch one PatchGAN score sees with `layers` stride-2 layers: 1 + sum (k - 1) * stride
    product over the five 4 x 4 convolutions = 1 + 3 (1 + 2 + ... + 2^(n-1)) + 3 * 2^n + 3 * 2^n = 9 * 2^n - 2."""
    return 9 * 2**layers - 2


def patch_layers(image_size: int) -> int:
    """The n >= 1 whose receptive field is the largest not above image_size * 70 / 256 (the paper's 70 x 70
    patch of a 256 x 256 image), or 16 px: 256 -> 3 (70 px), 128 -> 2 (34 px), 64 and below -> 1 (16 px)."""
    target = max(16.0, image_size * 70 / 256)
    layers = 1
    while receptive_field(layers + 1) <= target:
        layers += 1
    return layers


class PatchDiscriminator(nn.Module):
    """(B, in_channels, H, W) -> one score per overlapping patch, (B, 1, h, w)."""

    def __init__(self, in_channels: int, width: int, layers: int, norm: Norm = "batch") -> None:
        super().__init__()
        bias = norm == "none"  # a bias before batch or instance norm is cancelled by its mean
        channels = [width * min(2**i, 8) for i in range(layers + 1)]  # 64, 128, 256, 512 for n = 3
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, channels[0], 4, 2, 1), nn.LeakyReLU(0.2)]  # C64: no norm
        for i in range(1, layers):  # the other stride-2 layers
            blocks += [nn.Conv2d(channels[i - 1], channels[i], 4, 2, 1, bias=bias), norm_layer(norm, channels[i]),
                       nn.LeakyReLU(0.2)]
        blocks += [nn.Conv2d(channels[layers - 1], channels[layers], 4, 1, 1, bias=bias), norm_layer(norm, channels[layers]),
                   nn.LeakyReLU(0.2),  # stride 1
                   nn.Conv2d(channels[layers], 1, 4, 1, 1)]  # one score per patch, stride 1
        self.layers = layers
        self.net = nn.Sequential(*blocks)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, 1, h, w)


# ----------------------------------------------------------------------------- ResNet generator


class ResidualBlock(nn.Module):
    """x + conv3(relu(norm(conv3(x)))) then norm: CycleGAN's R_k (Appendix 7.2), StarGAN's residual block."""

    def __init__(self, channels: int, padding: str, affine: bool) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, padding_mode=padding, bias=False), norm_layer("instance", channels, affine),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, padding_mode=padding, bias=False), norm_layer("instance", channels, affine),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResNetTranslator(nn.Module):
    """(B, in_channels, H, W) -> (B, out_channels, H, W) in [-1, 1]: c7s1-w, `downsamplings` stride-2
    convolutions doubling the width, `blocks` residual blocks, as many transposed convolutions back, c7s1-out, Tanh.

    style="cyclegan": 3 x 3 sampling convolutions, reflection padding, instance norm without affine parameters;
    style="stargan": 4 x 4 sampling convolutions, zero padding, affine instance norm."""

    def __init__(self, in_channels: int, out_channels: int, width: int, blocks: int, downsamplings: int = 2,
                 style: Literal["cyclegan", "stargan"] = "cyclegan") -> None:
        super().__init__()
        padding, affine, kernel = ("reflect", False, 3) if style == "cyclegan" else ("zeros", True, 4)
        bias = False  # every convolution but the last is followed by instance norm, which cancels a bias
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 7, 1, 3, padding_mode=padding, bias=bias),
                                  norm_layer("instance", width, affine), nn.ReLU())
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        self.up_norms = nn.ModuleList()
        channels = width
        for _ in range(downsamplings):  # d128, d256
            self.down.append(nn.Sequential(nn.Conv2d(channels, 2 * channels, kernel, 2, 1, bias=bias),
                                           norm_layer("instance", 2 * channels, affine), nn.ReLU()))
            channels *= 2
        self.blocks = nn.Sequential(*[ResidualBlock(channels, padding, affine) for _ in range(blocks)])
        for _ in range(downsamplings):  # u128, u64
            self.up.append(nn.ConvTranspose2d(channels, channels // 2, kernel, 2, 1, bias=bias))
            self.up_norms.append(nn.Sequential(norm_layer("instance", channels // 2, affine), nn.ReLU()))
            channels //= 2
        self.head = nn.Sequential(nn.Conv2d(width, out_channels, 7, 1, 3, padding_mode=padding), nn.Tanh())  # c7s1-3

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)  # (B, w, H, W)
        sizes = []
        for layer in self.down:
            sizes.append(h.shape[-2:])
            h = layer(h)  # (B, 2c, ceil(h/2), ceil(w/2))
        h = self.blocks(h)
        for layer, norm in zip(self.up, self.up_norms):
            h = norm(layer(h, output_size=sizes.pop()))  # (B, c/2, size of the map before the matching down-sampling)
        return self.head(h)  # (B, out, H, W) in [-1, 1]


# ----------------------------------------------------------------------------- schedule


def constant_then_linear(step: int, total: int, decay_from: float) -> float:
    """The learning-rate factor at the step after `step` of `total`: 1 for the first decay_from * total steps,
    then linear to 0 at the end, 1 - (step - s0) / (total - s0) (Zhu et al. 2017, Sec. 4; Choi et al. 2018, Sec. 4)."""
    start = int(decay_from * total)
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(total - start, 1))

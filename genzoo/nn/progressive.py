"""Building blocks of progressively grown GANs, shared by ProGAN and StyleGAN (v1).

Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation" (ICLR 2018):
- Sec. 2, Fig. 2: training starts at 4 x 4 and each doubling of the resolution is faded in: the new
  block's output is blended with the upsampled output of the one before, with a weight alpha that
  grows linearly from 0 to 1; the discriminator mirrors it (`Growth`, `ProgressiveDiscriminator`).
  Every block is built at the start and the level of detail only chooses which ones run, so the
  optimizers, the EMA and the checkpoints never change shape.
- Sec. 3: minibatch standard deviation, one extra feature map near the end of the discriminator
  (`minibatch_stddev`).
- Sec. 4.1: equalised learning rate: weights drawn from N(0, 1) and scaled at run time by He's
  constant c = gain / sqrt(fan_in) (`EqualLinear`, `EqualConv2d`).
- Sec. 4.2: pixel-wise feature vector normalisation b = a / sqrt(mean_j a_j^2 + eps) (`pixel_norm`).

Karras, Laine & Aila, "A Style-Based Generator Architecture for GANs" (CVPR 2019), Sec. 2: bilinear
up/downsampling, here (as in their code) nearest neighbour followed by a [1 2 1] binomial blur (`blur`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.errors import ConfigError

LRELU_SLOPE = 0.2  # leaky ReLU slope of both papers
HE_GAIN = math.sqrt(2.0)  # He et al. 2015: keeps the variance through a (leaky) ReLU


# ----------------------------------------------------------------------------- resolutions and the growth schedule


def is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def check_resolution(size: int | None, start: int, family: str) -> int:
    """The side of the images a growing network makes: a power of two from 4 up, at least `start`."""
    if size is None or size < 4 or not is_power_of_two(size):
        raise ConfigError(f"a {family} network grows by doublings from 4 x 4, so it needs square images whose side is a "
                          f"power of two, and the data is {size} x {size}; set data.image_size to one (e.g. 32), or pad "
                          "to one with data.pad_to (Fashion-MNIST: data.pad_to=32).")
    if not is_power_of_two(start) or not 4 <= start <= size:
        raise ConfigError(f"model.start_resolution={start} must be a power of two from 4 to the image size {size}.")
    return size


def resolutions(size: int) -> list[int]:
    """[4, 8, ..., size]: the resolution of each block, index 0 the 4 x 4 one."""
    return [4 * 2**i for i in range(int(math.log2(size)) - 1)]


@dataclass(frozen=True)
class Growth:
    """Karras et al. 2018, Sec. 2 and Appendix A.1: `stable_steps` at the start resolution, then for each
    doubling `fade_steps` of fade-in (alpha rising linearly from 0) and `stable_steps` at alpha = 1, until
    the final resolution, which trains for the rest of the run. A function of the step alone."""

    start: int  # resolution of the first stage
    final: int  # resolution of the last
    fade_steps: int
    stable_steps: int

    @property
    def levels(self) -> int:
        """Doublings from the start resolution to the final one."""
        return int(math.log2(self.final // self.start))

    def at(self, step: int) -> tuple[int, float]:
        """(level, alpha) after `step` steps: level 0 is the start resolution, level L the final one; alpha
        in [0, 1) while level L fades in, 1 once it is stable."""
        if step < self.stable_steps or self.levels == 0:
            return 0, 1.0
        period = self.fade_steps + self.stable_steps
        level, within = divmod(step - self.stable_steps, period)
        level += 1
        if level > self.levels:
            return self.levels, 1.0
        return level, within / self.fade_steps if within < self.fade_steps else 1.0

    def resolution(self, step: int) -> int:
        return self.start * 2 ** self.at(step)[0]


def channel_widths(width: int, max_width: int, size: int) -> Callable[[int], int]:
    """Feature maps at resolution r: `width` at the final resolution, doubled with each halving of r,
    at most `max_width` (the papers' 512)."""
    return lambda r: max(1, min(max_width, width * size // r))


# ----------------------------------------------------------------------------- equalised learning rate


class EqualLinear(nn.Module):
    """y = (c W) x + b, W ~ N(0, 1), b = bias_init, c = gain / sqrt(fan_in) applied at run time (Karras et
    al. 2018, Sec. 4.1): every weight then moves at the same speed under Adam, whatever its fan-in."""

    def __init__(self, in_features: int, out_features: int, gain: float = HE_GAIN, bias_init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)  # (B, in) -> (B, out)


class EqualConv2d(nn.Module):
    """A convolution with an equalised learning rate (see `EqualLinear`); fan_in = in_channels * k * k."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = HE_GAIN,
                 padding: int | None = None, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = gain / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2 if padding is None else padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)  # (B, in, H, W) -> (B, out, H', W')


def lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LRELU_SLOPE)


# ----------------------------------------------------------------------------- normalisation and statistics


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Karras et al. 2018, Sec. 4.2, Eq. 2: b_xy = a_xy / sqrt(1/N sum_j (a^j_xy)^2 + eps) over the N channels
    (dim 1) of each pixel (or of a (B, N) vector); in float32 under autocast."""
    return (x.float() * torch.rsqrt(x.float().pow(2).mean(1, keepdim=True) + eps)).to(x.dtype)


def minibatch_stddev(x: Tensor, group_size: int = 4, eps: float = 1e-8) -> Tensor:
    """Karras et al. 2018, Sec. 3: the standard deviation of each feature at each pixel over a group of
    samples, averaged over features and pixels into one number per group, appended as one more feature
    map. Groups as in their code: with M = B / G, samples i, i + M, i + 2M, ... form group i (G is the
    largest divisor of B not above `group_size`). (B, C, H, W) -> (B, C + 1, H, W)."""
    batch, channels, height, width = x.shape
    group = min(group_size, batch)
    while batch % group:
        group -= 1
    y = x.float().reshape(group, batch // group, channels, height, width)  # (G, M, C, H, W)
    y = y - y.mean(0)  # deviation from the group mean
    std = (y.pow(2).mean(0) + eps).sqrt()  # (M, C, H, W): std over the group
    per_group = std.mean(dim=(1, 2, 3)).repeat(group)  # (B,): sample b gets group b mod M
    feature = per_group.view(batch, 1, 1, 1).expand(batch, 1, height, width).to(x.dtype)  # (B, 1, H, W)
    return torch.cat([x, feature], dim=1)


# ----------------------------------------------------------------------------- resampling


def upsample(x: Tensor) -> Tensor:
    """Nearest-neighbour doubling: (B, C, H, W) -> (B, C, 2H, 2W)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample(x: Tensor, factor: int = 2) -> Tensor:
    """Average pooling by `factor` (box filter): (B, C, H, W) -> (B, C, H / f, W / f)."""
    return F.avg_pool2d(x, factor) if factor > 1 else x


def blur(x: Tensor) -> Tensor:
    """The [1 2 1] x [1 2 1] / 16 binomial low-pass filter per channel (Karras et al. 2019, Sec. 2), same size."""
    taps = torch.tensor([1.0, 2.0, 1.0], device=x.device, dtype=x.dtype)
    kernel = (taps[:, None] * taps[None, :] / 16).expand(x.shape[1], 1, 3, 3)  # (C, 1, 3, 3), depthwise
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])


def upscale_to(images: Tensor, size: int) -> Tensor:
    """Images of a lower level of detail shown at the network's full size (nearest neighbour, exact copies)."""
    factor = size // images.shape[-1]
    return images if factor == 1 else F.interpolate(images, scale_factor=factor, mode="nearest")


def fade_reals(x: Tensor, resolution: int, alpha: float) -> Tensor:
    """Real images as the discriminator sees them at a level of detail (Karras et al. 2018, Sec. 2 and their
    code): box-downsampled to `resolution`, and while that resolution fades in, blended with their own
    half-resolution version shown at that size: lerp(up(down(x)), x, alpha). (B, C, R, R) -> (B, C, r, r)."""
    x = downsample(x, x.shape[-1] // resolution)
    if alpha < 1:
        x = torch.lerp(upsample(downsample(x)), x, alpha)
    return x


# ----------------------------------------------------------------------------- the discriminator both families use


class DiscriminatorBlock(nn.Module):
    """Karras et al. 2018, Table 2: conv 3x3, LReLU, conv 3x3, LReLU, downsample (blurred first for StyleGAN)."""

    def __init__(self, in_channels: int, out_channels: int, use_blur: bool) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3)
        self.use_blur = use_blur

    def forward(self, x: Tensor) -> Tensor:
        x = lrelu(self.conv1(lrelu(self.conv0(x))))  # (B, C_out, H, W)
        return downsample(blur(x) if self.use_blur else x)  # (B, C_out, H / 2, W / 2)


class ProgressiveDiscriminator(nn.Module):
    """The ProGAN discriminator (Karras et al. 2018, Table 2), also StyleGAN v1's: from-RGB 1x1 convolutions
    at each resolution, a block per halving, then at 4 x 4 minibatch stddev, conv 3x3, conv 4x4 (a dense
    layer over the map) and a linear score. `forward(x, top, alpha)` reads images at resolution index `top`
    and, while it fades in, blends in the from-RGB of the half-size image (Fig. 2)."""

    def __init__(self, size: int, channels: int, widths: Callable[[int], int], start: int, group_size: int = 4,
                 use_blur: bool = False) -> None:
        super().__init__()
        self.sizes = resolutions(size)
        self.group_size = group_size
        self.from_rgb = nn.ModuleDict({str(r): EqualConv2d(channels, widths(r), 1) for r in self.sizes if r >= start})
        self.blocks = nn.ModuleList([DiscriminatorBlock(widths(r), widths(r // 2), use_blur) for r in self.sizes[1:]])
        width = widths(4)
        self.final_conv = EqualConv2d(width + 1, width, 3)
        self.final_dense = EqualConv2d(width, width, 4, padding=0)  # 4 x 4 -> 1 x 1
        self.score = EqualLinear(width, 1, gain=1.0)

    def forward(self, x: Tensor, top: int, alpha: float) -> Tensor:
        h = lrelu(self.from_rgb[str(self.sizes[top])](x))  # (B, C_top, r, r)
        if top > 0:
            h = self.blocks[top - 1](h)  # (B, C, r / 2, r / 2)
            if alpha < 1:  # the new resolution fades in over its half-size from-RGB
                h = torch.lerp(lrelu(self.from_rgb[str(self.sizes[top - 1])](downsample(x))), h, alpha)
            for index in range(top - 1, 0, -1):
                h = self.blocks[index - 1](h)
        h = minibatch_stddev(h, self.group_size)  # (B, C_4 + 1, 4, 4)
        h = lrelu(self.final_dense(lrelu(self.final_conv(h))))  # (B, C_4, 1, 1)
        return self.score(h.flatten(1))  # (B, 1)

"""PixelCNN: an image as a product of conditionals, sampled one pixel (and colour channel) at a time.

van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks" (ICML 2016), Eq. 1-2:
pixels x_1 .. x_{n^2} in raster order (row by row, left to right) and
    p(x) = prod_i p(x_i | x_1, ..., x_{i-1}),
    p(x_i | x_<i) = p(x_{i,R} | x_<i) p(x_{i,G} | x_<i, x_{i,R}) p(x_{i,B} | x_<i, x_{i,R}, x_{i,G}),
each value a 256-way softmax (Sec. 5.3), so -log p(x) is exact: the sum of the cross-entropies, in
nats per image, or bits per dimension after dividing by C H W log 2. Masks (Sec. 3.4): a colour
channel of a pixel sees the earlier channels of that pixel through mask A in the first layer (not
itself) and mask B afterwards (itself too, as features computed from the earlier ones).

The networks are the gated PixelCNN of van den Oord et al., "Conditional Image Generation with
PixelCNN Decoders" (NeurIPS 2016):
- gated activations (Eq. 2): y = tanh(W_{k,f} * x) ⊙ sigma(W_{k,g} * x);
- a vertical stack (a (k//2 + 1) x k convolution over the rows above and the current one) and a
  horizontal stack (a 1 x (k//2 + 1) convolution over the current row up to the pixel), the
  vertical one fed into the horizontal one one row down (Sec. 2.2, Fig. 2). A masked k x k
  convolution cannot see the pixels up and right of its receptive field (the "blind spot"); the two
  stacks together see every earlier pixel (tests/test_autoregressive.py checks both by gradients);
- class conditioning (Eq. 4): y = tanh(W_f * x + V_f^T h) ⊙ sigma(W_g * x + V_g^T h), h one-hot;
- residual connections in the horizontal stack, then two 1 x 1 ReLU layers to the logits.
`likelihood: bernoulli` models the binarised image instead (a pixel is 1 when above half intensity,
the fixed threshold of binarised MNIST; one logit per value), as the papers' MNIST results do.

Sampling (`generate`, `complete`) caches what does not change (`RasterCache`, after Ramachandran et al.
2017): each row runs one row of every vertical block, each value one column of every horizontal block,
instead of the whole network on the whole image; a test checks its logits against the full forward pass.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import PositiveInt, field_validator
from torch import Tensor, nn

from genzoo.config import FamilyConfig
from genzoo.errors import ConfigError, GenzooError
from genzoo.models.base import DataInfo, GenerativeModel, Likelihood, class_labels
from genzoo.nn import sequential_cpu
from genzoo.registry import MODELS

LEVELS = 256  # values of an 8-bit channel

# ----------------------------------------------------------------------------- config


class PixelCNNConfig(FamilyConfig):
    width: PositiveInt = 64  # feature maps of each stack (p in the paper); the gates use 2p
    layers: PositiveInt = 8  # gated blocks, the first with mask A
    first_kernel_size: PositiveInt = 7  # k of the first block (7 x 7 in van den Oord et al. 2016a)
    kernel_size: PositiveInt = 3  # k of the other blocks
    likelihood: Literal["categorical", "bernoulli"] = "categorical"  # 256-way softmax, or the binarised image
    conditional: bool = False  # class-conditional (Eq. 4; needs a labelled dataset)

    @field_validator("first_kernel_size", "kernel_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd (3, 5, 7, ...), so that the kernel is centred on the pixel")
        return value


# ----------------------------------------------------------------------------- masks


def channel_groups(features: int, channels: int, halves: int = 1) -> Tensor:
    """The colour channel (0 .. channels - 1) each of `features` feature maps belongs to: contiguous
    blocks, repeated in each of `halves` halves (the tanh and sigmoid halves of a gate). (features,)"""
    per_half = features // halves
    return (torch.arange(features) % per_half) * channels // per_half


def channel_mask(out_groups: Tensor, in_groups: Tensor, include_self: bool) -> Tensor:
    """Which input feature an output feature of the same pixel may see: those of earlier channels, and of
    its own channel too for mask B (van den Oord et al. 2016a, Sec. 3.4). (out, in) float."""
    earlier = out_groups[:, None] > in_groups[None, :]
    same = out_groups[:, None] == in_groups[None, :]
    return (earlier | (same & include_self)).float()


class CentreMaskedConv(nn.Conv2d):
    """A convolution whose kernel's last tap (the current pixel) holds a channel mask; other taps are free.
    Used with explicit causal padding, so that the last tap is the pixel the output belongs to."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], centre: Tensor | None) -> None:
        super().__init__(in_channels, out_channels, kernel)
        mask = torch.ones_like(self.weight)  # (out, in, kh, kw)
        if centre is not None:
            mask[:, :, -1, -1] = centre
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias)


def down_shift(x: Tensor) -> Tensor:
    """Move rows down by one (a zero row on top): row i then holds what row i - 1 saw. (B, C, H, W)"""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def gate(x: Tensor) -> Tensor:
    """tanh(f) ⊙ sigmoid(g) for x = [f, g] along channels (Eq. 2). (B, 2p, H, W) -> (B, p, H, W)"""
    f, g = x.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


# ----------------------------------------------------------------------------- networks


class GatedBlock(nn.Module):
    """One gated layer of both stacks (Fig. 2 of van den Oord et al. 2016b)."""

    def __init__(self, in_channels: int, width: int, kernel: int, colours: int, first: bool, num_classes: int) -> None:
        super().__init__()
        self.first, self.reach = first, kernel // 2  # rows up and columns left (and right, vertically) it sees
        groups_in = channel_groups(in_channels, colours)
        groups_gate, groups_out = channel_groups(2 * width, colours, halves=2), channel_groups(width, colours)
        # vertical: rows i - k//2 .. i, columns j - k//2 .. j + k//2 (the current row leaves through down_shift)
        self.vertical = nn.Conv2d(in_channels, 2 * width, (self.reach + 1, kernel))
        # horizontal: columns j - k//2 .. j of row i; at j itself only earlier channels (A) or these too (B)
        self.horizontal = CentreMaskedConv(in_channels, 2 * width, (1, self.reach + 1),
                                           channel_mask(groups_gate, groups_in, include_self=not first))
        self.link = nn.Conv2d(2 * width, 2 * width, 1)  # vertical -> horizontal, one row down
        self.out = CentreMaskedConv(width, width, (1, 1), channel_mask(groups_out, groups_out, include_self=True))
        self.embed_vertical = nn.Embedding(num_classes, 2 * width) if num_classes else None  # V_f, V_g of Eq. 4
        self.embed_horizontal = nn.Embedding(num_classes, 2 * width) if num_classes else None

    def vertical_pre(self, rows: Tensor, labels: Tensor | None) -> Tensor:
        """The vertical pre-activation [f, g] (B, 2p, n, W) of n rows, from those rows with the r = k//2 rows above
        them on top (B, C_in, r + n, W)."""
        pre = self.vertical(F.pad(rows, (self.reach, self.reach, 0, 0)))  # rows i - r .. i, columns j - r .. j + r
        return pre if self.embed_vertical is None else pre + self.embed_vertical(labels)[:, :, None, None]

    def horizontal_out(self, columns: Tensor, link: Tensor, labels: Tensor | None) -> Tensor:
        """The horizontal stack's output (B, p, n, m) at m columns, from those columns with the r columns left of
        them (B, C_in, n, r + m) and the vertical stack's link there (B, 2p, n, m)."""
        pre = self.horizontal(columns) + link  # columns j - r .. j
        if self.embed_horizontal is not None:
            pre = pre + self.embed_horizontal(labels)[:, :, None, None]
        out = self.out(gate(pre))  # (B, p, n, m)
        return out if self.first else columns[..., self.reach :] + out  # residual (Fig. 2), not around the first block

    def vertical_step(self, v: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor]:
        """The vertical stack's output (B, p, H, W) and what it adds to the horizontal stack (B, 2p, H, W)."""
        pre = self.vertical_pre(F.pad(v, (0, 0, self.reach, 0)), labels)  # (B, 2p, H, W)
        return gate(pre), self.link(down_shift(pre))  # row i of the link sees rows < i only

    def horizontal_step(self, h: Tensor, link: Tensor, labels: Tensor | None) -> Tensor:
        """The horizontal stack's output (B, p, H, W) from its input and the vertical stack's link."""
        return self.horizontal_out(F.pad(h, (self.reach, 0, 0, 0)), link, labels)


class GatedPixelCNN(nn.Module):
    """Logits (B, C, K, H, W) of every value given the values before it in raster and channel order."""

    def __init__(self, channels: int, width: int, layers: int, first_kernel: int, kernel: int, levels: int,
                 num_classes: int) -> None:
        super().__init__()
        self.channels, self.levels = channels, levels
        self.blocks = nn.ModuleList(
            GatedBlock(channels if i == 0 else width, width, first_kernel if i == 0 else kernel, channels, i == 0, num_classes)
            for i in range(layers))
        groups = channel_groups(width, channels)
        groups_logits = torch.arange(channels * levels) // levels  # logit c * K + k belongs to channel c
        self.head = nn.Sequential(
            nn.ReLU(), CentreMaskedConv(width, width, (1, 1), channel_mask(groups, groups, include_self=True)),
            nn.ReLU(), CentreMaskedConv(width, channels * levels, (1, 1), channel_mask(groups_logits, groups, include_self=True)))

    def vertical_stack(self, x: Tensor, labels: Tensor | None = None) -> list[Tensor]:
        """What the vertical stack adds to each horizontal block: (B, 2p, H, W) each, row i from rows < i."""
        links, v = [], x
        for block in self.blocks:
            v, link = block.vertical_step(v, labels)
            links.append(link)
        return links

    def horizontal_stack(self, x: Tensor, links: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The last block's output (B, p, H', W') for the rows (or part of a row) x holds, given the vertical
        stack's links; feature f belongs to colour channel `channel_groups(p, C)[f]`."""
        h = x
        for block, link in zip(self.blocks, links):
            h = block.horizontal_step(h, link, labels)
        return h

    def logits(self, features: Tensor) -> Tensor:
        """Logits (B, C, K, H, W) from the horizontal stack's output (B, p, H, W)."""
        return self.head(features).unflatten(1, (self.channels, self.levels))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.logits(self.horizontal_stack(x, self.vertical_stack(x, labels), labels))  # (B, C, K, H, W)


class RasterCache:
    """Sampling in raster order without recomputing what is known (Ramachandran et al., "Fast Generation for
    Convolutional Autoregressive Models", 2017): every block's vertical output is kept for the rows done and
    its horizontal output for the columns done in the current row, so a new row costs one row of each
    vertical block and a new value one column of each horizontal block, not the network on the image.
    The buffers hold zeros above and to the left of the image, where the convolutions' padding is."""

    def __init__(self, network: GatedPixelCNN, x: Tensor, labels: Tensor | None) -> None:
        self.network, self.labels = network, labels
        self.pad = max(block.reach for block in network.blocks)  # P rows on top, P columns on the left
        batch, _, height, width = x.shape
        p = network.blocks[-1].out.out_channels
        self.canvas = F.pad(x, (self.pad, 0, self.pad, 0))  # (B, C, P + H, P + W): the image as sampled so far
        self.vertical = [x.new_zeros(batch, p, self.pad + height, width) for _ in network.blocks]  # gated outputs
        self.horizontal = [x.new_zeros(batch, p, 1, self.pad + width) for _ in network.blocks]  # the current row's
        self.links: list[Tensor] = []

    def begin_row(self, row: int) -> None:
        """The vertical stack's row `row - 1` (all of whose inputs are final now) and its links into `row`."""
        P, links = self.pad, []
        for i, block in enumerate(self.network.blocks):
            if row == 0:  # above the image: the zero row of down_shift
                pre = self.canvas.new_zeros(len(self.canvas), block.vertical.out_channels, 1, self.vertical[i].shape[-1])
            else:
                below = self.canvas[..., P:] if i == 0 else self.vertical[i - 1]  # (B, C_in, P + H, W)
                pre = block.vertical_pre(below[:, :, P + row - 1 - block.reach : P + row], self.labels)  # (B, 2p, 1, W)
                self.vertical[i][:, :, P + row - 1] = gate(pre)[:, :, 0]
            links.append(block.link(pre))  # (B, 2p, 1, W)
        self.links = links

    def logits(self, row: int, column: int) -> Tensor:
        """Logits (B, C, K) at (row, column): one column of each horizontal block."""
        P = self.pad
        for i, block in enumerate(self.network.blocks):
            left = self.canvas[:, :, P + row : P + row + 1] if i == 0 else self.horizontal[i - 1]  # (B, C_in, 1, P + W)
            out = block.horizontal_out(left[..., P + column - block.reach : P + column + 1],
                                       self.links[i][..., column : column + 1], self.labels)  # (B, p, 1, 1)
            self.horizontal[i][..., P + column] = out[..., 0]
        return self.network.logits(out)[..., 0, 0].float()  # (B, C, K)

    def write(self, row: int, column: int, channel: int, value: Tensor) -> None:
        """A sampled (or given) value, as the image the network reads, (B,)."""
        self.canvas[:, channel, self.pad + row, self.pad + column] = value


# ----------------------------------------------------------------------------- model


@MODELS.register("pixelcnn")
class PixelCNN(GenerativeModel):
    Config = PixelCNNConfig
    ema_modules = ("network",)

    def __init__(self, config: PixelCNNConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if config.conditional and not info.num_classes:
            raise ConfigError("a conditional PixelCNN needs a labelled dataset (e.g. fashion-mnist); choose one or set "
                              "model.conditional=false.")
        self.conditional = config.conditional
        self.num_classes = info.num_classes if config.conditional else 0
        self.requires = ("image", "label") if self.conditional else ("image",)
        self.binary = config.likelihood == "bernoulli"
        self.channels, self.size = info.channels, info.image_size
        # exact -log p(x) of the 8-bit (or binarised) values: discrete, so no dequantisation offset
        self.likelihood = Likelihood(exact=True, item="image", dims=info.channels * info.image_size**2, offset=0.0)
        self.network = GatedPixelCNN(info.channels, config.width, config.layers, config.first_kernel_size,
                                     config.kernel_size, 1 if self.binary else LEVELS, self.num_classes)

    # values <-> network input: the network reads values as images in [-1, 1]
    def to_values(self, x: Tensor) -> Tensor:
        """Images in [-1, 1] -> integer values (B, C, H, W): 0..255, or 0/1 when binarised (above half intensity)."""
        if self.binary:
            return (x > 0).long()
        return ((x.float() + 1) * 127.5).round().clamp(0, LEVELS - 1).long()

    def to_image(self, values: Tensor) -> Tensor:
        """Integer values -> images in [-1, 1] (what the network reads, and what `generate` returns)."""
        return values.float() * 2 - 1 if self.binary else values.float() / 127.5 - 1

    def _labels(self, labels: Tensor | None, n: int) -> Tensor | None:
        if not self.conditional:
            if labels is not None:
                raise GenzooError("this PixelCNN is unconditional and takes no labels; drop them.")
            return None
        return class_labels(labels, n, self.num_classes, self.device)

    def log_likelihoods(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """log p(x_i | x_<i) of every value, (B, C, H, W) in nats."""
        values = self.to_values(x)  # (B, C, H, W)
        logits = self.network(self.to_image(values), labels).float()  # (B, C, K, H, W)
        if self.binary:
            return -F.binary_cross_entropy_with_logits(logits[:, :, 0], values.float(), reduction="none")
        return -F.cross_entropy(logits.transpose(1, 2), values, reduction="none")  # softmax over K

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        nats = -self.log_likelihoods(batch["image"], batch.get("label"))  # (B, C, H, W)
        per_dim = nats.mean()
        return {"total": per_dim, "bits_per_dim": per_dim.detach() / math.log(2)}

    @torch.no_grad()
    def nll(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """Exact -log p(x[|y]) in nats per image (B,); `generator` is unused (nothing is sampled)."""
        labels = batch.get("label") if self.conditional else None
        return -self.log_likelihoods(batch["image"], labels).flatten(1).sum(1)

    # ------------------------------------------------------------------------- sampling

    def _sample_value(self, logits: Tensor, generator: torch.Generator | None) -> Tensor:
        """A value (B,) drawn from the logits (B, K) of one channel."""
        if self.binary:
            u = torch.rand(logits.shape[0], device=logits.device, generator=generator)
            return (u < torch.sigmoid(logits[:, 0])).long()
        return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)[:, 0]

    def _fill(self, values: Tensor, known: Tensor, labels: Tensor | None, generator: torch.Generator | None) -> Tensor:
        """Sample every value where `known` is false, in raster and channel order, each given the values
        before it (given or sampled). values, known: (B, C, H, W). Rows before the first unknown are not sampled."""
        unknown_rows = (~known).any(dim=(0, 1, 3)).nonzero().flatten().tolist()
        if not unknown_rows:
            return values
        with sequential_cpu(self.device):  # thousands of small steps: one thread is fastest (genzoo.nn.decoding)
            cache = RasterCache(self.network, self.to_image(values), labels)
            for row in range(self.size):
                cache.begin_row(row)  # (every row: the vertical stack of the rows above is needed below them)
                for column in range(self.size) if row >= unknown_rows[0] else ():
                    for channel in range(self.channels):
                        keep = known[:, channel, row, column]  # (B,)
                        if keep.all():
                            continue
                        drawn = self._sample_value(cache.logits(row, column)[:, channel], generator)  # (B,)
                        values[:, channel, row, column] = torch.where(keep, values[:, channel, row, column], drawn)
                        cache.write(row, column, channel, self.to_image(values[:, channel, row, column]))
        return values

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n images (n, C, H, W) in [-1, 1], sampled pixel by pixel (a conditional model: every class in turn
        unless labels are given)."""
        labels = self._labels(labels, n)
        values = torch.zeros(n, self.channels, self.size, self.size, dtype=torch.long, device=self.device)
        known = torch.zeros_like(values, dtype=torch.bool)
        return self.to_image(self._fill(values, known, labels, generator))

    @torch.no_grad()
    def complete(self, x: Tensor, mask: Tensor, generator: torch.Generator | None = None,
                 labels: Tensor | None = None) -> Tensor:
        """x (B, C, H, W) in [-1, 1] with the values where `mask` is true kept exactly and the rest sampled
        in raster order. Each value is conditioned on the values before it; given values after an unknown
        one are kept but not conditioned on (exact completion for a known top part, e.g. the top rows)."""
        if mask.shape != x.shape:
            raise GenzooError(f"the mask has shape {tuple(mask.shape)} but the images {tuple(x.shape)}; give one of each size.")
        labels = self._labels(labels, len(x))
        values = self.to_values(x.to(self.device))
        filled = self.to_image(self._fill(values, mask.to(self.device).bool(), labels, generator))
        return torch.where(mask.to(self.device).bool(), x.to(self.device), filled)  # given values exactly as given

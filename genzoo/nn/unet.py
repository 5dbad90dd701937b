"""The U-Net denoiser of DDPM: eps_theta(x_t, t [, y]).

Ho et al., "Denoising Diffusion Probabilistic Models" (2020), Appendix B: a PixelCNN++-style U-Net
(Salimans et al. 2017) of Wide-ResNet blocks with group normalisation, self-attention at the 16 x 16
feature maps, and the diffusion time t fed to every residual block through the sinusoidal position
embedding of the Transformer (Vaswani et al. 2017). Layout, level by level:

    conv_in -> [ResBlock (+ attention)] x blocks_per_level, down-sample   (each level but the last)
            -> middle: ResBlock, attention, ResBlock
            -> [ResBlock on concat(h, skip) (+ attention)] x (blocks_per_level + 1), up-sample
            -> GroupNorm, SiLU, conv_out

Level i has width * multipliers[i] channels. Attention sits at the levels whose feature map side is
in `attention_resolutions` (and always in the middle). The time embedding is sinusoidal(width) ->
Linear -> SiLU -> Linear to 4 * width; a class-conditional U-Net adds a learned class embedding to
it, with one extra "null" class for classifier-free guidance (Ho & Salimans 2022). With width 128,
multipliers (1, 2, 2, 2), 2 blocks per level and attention at 16 this is the DDPM CIFAR-10 network
(35.7 M parameters, as `google/ddpm-cifar10-32`). Up-sampling interpolates to the size of the skip
connection, so sides that are not powers of two (Fashion-MNIST's 28 -> 14 -> 7) work. The last
convolution of each residual branch, of each attention block and of the output start at zero (as
improved-diffusion does), so every block starts as the identity and the network predicts 0.

Text conditioning (`context_dim` > 0): the U-Net of latent diffusion (Rombach et al. 2022, Sec. 3.3)
attends to a sequence of token embeddings tau(y) (B, L, context_dim) through cross-attention,
    Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V,  Q = W_Q phi(z_t),  K = W_K tau(y),  V = W_V tau(y)   (Eq. 3),
after the self-attention of each level whose side is in `cross_attention_resolutions` (default: where
self-attention is) and in the middle; padding tokens are masked out of the keys. The network is then
eps_theta(x_t, t, tau(y)). Without a context these layers do not exist, and the weights are exactly
those of the class-conditional U-Net.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoidal_frequencies(dim: int, max_period: float = 10_000.0) -> Tensor:
    """w_i = max_period^(-i / (dim/2)), i < dim/2 (Vaswani et al. 2017, Sec. 3.5). (dim/2,)"""
    return torch.exp(-math.log(max_period) * torch.arange(dim // 2, dtype=torch.float32) / (dim // 2))


def sinusoidal_embedding(t: Tensor, frequencies: Tensor, dim: int) -> Tensor:
    """[sin(t w_i), cos(t w_i)] (zero-padded to an odd dim): (B,) -> (B, dim)."""
    angles = t.float()[:, None] * frequencies[None]  # (B, dim/2)
    embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (B, 2 * (dim/2))
    return F.pad(embedding, (0, dim % 2))  # (B, dim)


def group_norm(channels: int) -> nn.GroupNorm:
    """32 groups (Wu & He 2018), fewer for narrow layers: at least 2 channels a group, or the norm would
    cancel the per-channel shift that carries the time embedding."""
    return nn.GroupNorm(math.gcd(32, max(channels // 2, 1)), channels, eps=1e-6)


def _zero(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class ResBlock(nn.Module):
    """h + F(h, t): GroupNorm, SiLU, conv3, + Linear(emb), GroupNorm, SiLU, dropout, conv3; 1x1 shortcut if widths
    differ. With embedding_dim 0 there is no embedding (the autoencoders of latent diffusion use such blocks)."""

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_channels), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embedding = nn.Linear(embedding_dim, out_channels) if embedding_dim else None
        self.norm2, self.dropout = group_norm(out_channels), nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, embedding: Tensor | None = None) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, H, W)
        if self.embedding is not None:
            h = h + self.embedding(F.silu(embedding))[:, :, None, None]  # + time (and class) embedding, (B, C_out, 1, 1)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))  # (B, C_out, H, W)
        return self.shortcut(x) + h


class SelfAttention(nn.Module):
    """x + proj(softmax(q k^T / sqrt(d)) v) over the H*W positions (Vaswani et al. 2017), after GroupNorm."""

    def __init__(self, channels: int, heads: int = 1) -> None:
        super().__init__()
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = _zero(nn.Linear(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        q, k, v = self.qkv(tokens).view(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, heads, HW, d)
        attended = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, d); flash/memory-efficient kernels on CUDA
        out = self.proj(attended.transpose(1, 2).reshape(b, h * w, c))  # (B, HW, C)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class CrossAttention(nn.Module):
    """x + proj(softmax(q k^T / sqrt(d)) v) with q from the H*W positions of x (after GroupNorm) and k, v from a
    context (B, L, D) of token embeddings (Rombach et al. 2022, Eq. 3); keys where `mask` is False (padding) get
    no weight. x (B, C, H, W), context (B, L, D), mask (B, L) bool -> (B, C, H, W)."""

    def __init__(self, channels: int, context_dim: int, heads: int = 1) -> None:
        super().__init__()
        self.heads = heads
        self.norm = group_norm(channels)
        self.q = nn.Linear(channels, channels)
        self.kv = nn.Linear(context_dim, 2 * channels)
        self.proj = _zero(nn.Linear(channels, channels))

    def forward(self, x: Tensor, context: Tensor, mask: Tensor | None = None) -> Tensor:
        b, c, h, w = x.shape
        d = c // self.heads
        q = self.q(self.norm(x).flatten(2).transpose(1, 2)).view(b, h * w, self.heads, d).transpose(1, 2)  # (B, heads, HW, d)
        k, v = self.kv(context.to(x.dtype)).view(b, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)  # 2 x (B, heads, L, d)
        keep = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, L): True where a token takes part
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, heads, HW, d)
        out = self.proj(attended.transpose(1, 2).reshape(b, h * w, c))  # (B, HW, C)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class Level(nn.Module):
    """The residual blocks (each optionally followed by self- and cross-attention) of one resolution."""

    def __init__(self, channels: list[int], out_channels: int, embedding_dim: int, dropout: float,
                 attention: bool, heads: int, context_dim: int = 0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(c, out_channels, embedding_dim, dropout) for c in channels)
        self.attentions = nn.ModuleList(SelfAttention(out_channels, heads) if attention else nn.Identity() for _ in channels)
        self.cross = nn.ModuleList(CrossAttention(out_channels, context_dim, heads) for _ in channels) if context_dim else None

    def run(self, h: Tensor, embedding: Tensor, skips: list[Tensor], going_up: bool, context: Tensor | None,
            mask: Tensor | None) -> Tensor:
        """Each block on h (on the way up: concatenated with the last skip, which it takes), then its attention
        layers; on the way down each output is appended to `skips`."""
        for index, (block, attention) in enumerate(zip(self.blocks, self.attentions)):
            h = attention(block(torch.cat([h, skips.pop()], dim=1) if going_up else h, embedding))
            if self.cross is not None and context is not None:
                h = self.cross[index](h, context, mask)
            if not going_up:
                skips.append(h)
        return h


class UNet(nn.Module):
    """eps_theta(x_t, t, y): (B, C, H, W), (B,) timesteps, (B,) labels or None [, a context (B, L, D) with its
    mask (B, L)] -> (B, C, H, W)."""

    def __init__(self, channels: int, image_size: int, width: int = 64, multipliers: tuple[int, ...] = (1, 2, 2),
                 blocks_per_level: int = 2, attention_resolutions: tuple[int, ...] = (14,), dropout: float = 0.0,
                 heads: int = 1, num_classes: int = 0, context_dim: int = 0,
                 cross_attention_resolutions: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.width, embedding_dim = width, 4 * width
        self.register_buffer("frequencies", sinusoidal_frequencies(width), persistent=False)  # (width/2,)
        self.time_mlp = nn.Sequential(nn.Linear(width, embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim))
        self.class_embedding = nn.Embedding(num_classes + 1, embedding_dim) if num_classes else None  # last row: "no label"
        self.conv_in = nn.Conv2d(channels, width, 3, padding=1)

        cross_sides = attention_resolutions if cross_attention_resolutions is None else cross_attention_resolutions
        widths = [width * m for m in multipliers]
        sizes = [image_size]
        for _ in widths[1:]:
            sizes.append((sizes[-1] + 1) // 2)  # a stride-2 conv with padding 1 gives ceil(s / 2)
        skip_channels, current = [width], width
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        for level, (out, size) in enumerate(zip(widths, sizes)):
            inputs = [current] + [out] * (blocks_per_level - 1)
            self.down.append(Level(inputs, out, embedding_dim, dropout, size in attention_resolutions, heads,
                                   context_dim if size in cross_sides else 0))
            skip_channels += [out] * blocks_per_level
            current = out
            last = level == len(widths) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(out, out, 3, stride=2, padding=1))
            if not last:
                skip_channels.append(out)
        self.middle = nn.ModuleList([ResBlock(current, current, embedding_dim, dropout), SelfAttention(current, heads),
                                     ResBlock(current, current, embedding_dim, dropout)])
        self.middle_cross = CrossAttention(current, context_dim, heads) if context_dim else None
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(widths))):
            out, inputs = widths[level], []
            for _ in range(blocks_per_level + 1):
                inputs.append(current + skip_channels.pop())
                current = out
            self.up.append(Level(inputs, out, embedding_dim, dropout, sizes[level] in attention_resolutions, heads,
                                 context_dim if sizes[level] in cross_sides else 0))
            self.upsample.append(nn.Conv2d(out, out, 3, padding=1) if level else nn.Identity())  # after nearest up-sampling
        self.out = nn.Sequential(group_norm(width), nn.SiLU(), _zero(nn.Conv2d(width, channels, 3, padding=1)))

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None, context: Tensor | None = None,
                mask: Tensor | None = None) -> Tensor:
        embedding = self.time_mlp(sinusoidal_embedding(t, self.frequencies, self.width))  # (B, 4 width)
        if self.class_embedding is not None:
            if labels is None:  # no label: the null class of classifier-free guidance
                labels = torch.full_like(t, self.class_embedding.num_embeddings - 1, dtype=torch.long)
            embedding = embedding + self.class_embedding(labels)  # (B, 4 width)
        h = self.conv_in(x)  # (B, width, H, W)
        skips = [h]
        for level, downsample in zip(self.down, self.downsample):
            h = level.run(h, embedding, skips, False, context, mask)
            if not isinstance(downsample, nn.Identity):
                h = downsample(h)  # (B, C, ceil(H/2), ceil(W/2))
                skips.append(h)
        h = self.middle[1](self.middle[0](h, embedding))
        if self.middle_cross is not None and context is not None:
            h = self.middle_cross(h, context, mask)
        h = self.middle[2](h, embedding)
        for level, upsample in zip(self.up, self.upsample):
            h = level.run(h, embedding, skips, True, context, mask)
            if not isinstance(upsample, nn.Identity):
                h = upsample(F.interpolate(h, size=skips[-1].shape[-2:], mode="nearest"))  # to the next skip's size
        return self.out(h)  # (B, C, H, W)

"""A text encoder trained from scratch, and a bank of training captions; shared by the text-to-image families.

The encoder tau(y) is a small Transformer over word tokens (Vaswani et al. 2017), as latent diffusion
trains its text encoder from scratch with the diffusion model for its LAION text-to-image model
(Rombach et al. 2022, Sec. 4.3.1: "we implement tau_theta as a transformer"). Layout: token embedding
+ learned position embedding -> `depth` pre-norm blocks (LayerNorm, multi-head self-attention,
LayerNorm, GELU MLP of 4x the width, each with a residual connection; Xiong et al. 2020) -> LayerNorm.
Token 0 is padding: it is masked out of every attention's keys, and `pooled` averages the real tokens
only. Every caption starts with token 1 (`<s>`), so even the empty prompt has one real token: the
"no prompt" of classifier-free guidance is the encoding of the empty prompt, as in Stable Diffusion.

`CaptionBank` keeps the last K training captions in buffers (saved with the weights), so that a
text-to-image model can be asked for samples without a prompt: `generate(n)` draws its prompts from
the training captions it saw, which is also what FID against the training data needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PAD, START = 0, 1  # token ids every caption vocabulary starts with: padding, then the start of a caption


class TransformerBlock(nn.Module):
    """x + MHA(LN(x)) then x + MLP(LN(x)), attention over the real tokens only. x (B, L, D), mask (B, L)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.qkv, self.proj = nn.LayerNorm(width), nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])  # (B, heads, L, d)
        x = x + self.proj(attended.transpose(1, 2).reshape(b, length, width))  # (B, L, D)
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    """tau(y): tokens (B, L) int64, 0 = padding -> token embeddings (B, L, width) and the mask (B, L), True = real."""

    def __init__(self, vocab_size: int, max_length: int, width: int = 64, depth: int = 2, heads: int = 2) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"the text width {width} must be a multiple of its {heads} heads")
        self.max_length, self.width = max_length, width
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.position_embedding = nn.Parameter(torch.randn(max_length, width) * 0.02)  # (L, D)
        self.blocks = nn.ModuleList(TransformerBlock(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        mask = tokens != PAD  # (B, L)
        x = self.token_embedding(tokens) + self.position_embedding[: tokens.shape[1]]  # (B, L, D)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x), mask


def pooled(context: Tensor, mask: Tensor) -> Tensor:
    """The mean of the real tokens' embeddings: (B, L, D), (B, L) -> (B, D)."""
    weights = mask.to(context.dtype)[:, :, None]  # (B, L, 1)
    return (context * weights).sum(1) / weights.sum(1).clamp(min=1)


def empty_prompts(n: int, length: int, device: torch.device | str) -> Tensor:
    """The tokens of n empty prompts: <s> then padding, (n, L)."""
    tokens = torch.zeros(n, length, dtype=torch.long, device=device)
    tokens[:, 0] = START
    return tokens


class CaptionBank(nn.Module):
    """The last `size` training captions (buffers, saved with the weights): `add` them as training sees them,
    `draw` prompts from them. An empty bank (an untrained model) gives empty prompts."""

    def __init__(self, length: int, size: int = 512) -> None:
        super().__init__()
        self.register_buffer("captions", torch.zeros(size, length, dtype=torch.long))  # (K, L)
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # captions added so far

    @torch.no_grad()
    def add(self, tokens: Tensor) -> None:
        """Write a batch of caption tokens (B, L) over the oldest ones (no host synchronisation)."""
        size = len(self.captions)
        tokens = tokens[-size:]
        slots = (self.count + torch.arange(len(tokens), device=tokens.device)) % size  # (B,)
        self.captions.index_copy_(0, slots, tokens.to(self.captions.device))
        self.count += len(tokens)

    @torch.no_grad()
    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n captions (n, L) drawn uniformly, with replacement, from those in the bank."""
        filled = min(int(self.count), len(self.captions))
        if filled == 0:
            return empty_prompts(n, self.captions.shape[1], self.captions.device)
        picks = torch.randint(0, filled, (n,), generator=generator, device=generator.device if generator else "cpu")
        return self.captions[picks.to(self.captions.device)]


"""pix2pix: a conditional GAN that learns a -> b from paired images (edges -> photo, grey -> colour, ...).

Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional Adversarial Networks" (CVPR 2017).
The generator G is a U-Net (Sec. 3.2.1, Appendix 6.1.1): an encoder of 4 x 4 stride-2 convolutions
down to a 1 x 1 map (C64-C128-C256-C512-C512-...; LeakyReLU 0.2; batch norm except on the first layer),
a mirrored decoder (ReLU, transposed convolutions, Tanh on the output) and skip connections that
concatenate encoder layer i to decoder layer n - i. Dropout (0.5) on the first decoder layers is the
only noise: "we provide noise only in the form of dropout" (Sec. 3.1). The discriminator is a
PatchGAN on the pair (a, b) stacked along the channels (`genzoo.nn.image_to_image`), its receptive
field scaled to the image size. The objective is Eq. 4:

    G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G),   lambda = 100,
    L_cGAN(G, D) = E_{a,b}[log D(a, b)] + E_a[log(1 - D(a, G(a)))]           (Eq. 1)
    L_L1(G) = E_{a,b}[ ||b - G(a)||_1 ]                                       (Eq. 3)

with G trained on the non-saturating -log D(a, G(a)) and D's objective halved (Sec. 3.3). Other
objectives of `genzoo.losses` without penalties (lsgan, hinge, minimax) can replace the log loss.
The ablations of the paper's Table 1 are config keys: `l1_weight: 0` (cGAN alone),
`adversarial_weight: 0` (L1 alone: no discriminator phase), `conditional_discriminator: false` (D sees
only the output, "GAN + L1").

Left out: the random jitter and mirroring of the training images, and dropout and batch statistics at
test time (the paper keeps both on at inference). `translate` runs in eval mode: dropout off and the
batch-norm running statistics, so a translation is reproducible.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import NonNegativeFloat, PositiveInt, field_validator
from torch import Tensor, nn

from genzoo.config import FamilyConfig
from genzoo.errors import GenzooError
from genzoo.losses import ADVERSARIAL_LOSSES
from genzoo.models.base import DataInfo, GenerativeModel, Phase
from genzoo.nn.image_to_image import PatchDiscriminator, init_normal, norm_layer, patch_layers
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class Pix2PixConfig(FamilyConfig):
    objective: str = "non-saturating"  # the cGAN loss (Eq. 1); lsgan, hinge or minimax also work
    l1_weight: NonNegativeFloat = 100.0  # lambda of Eq. 4; 0: cGAN alone
    adversarial_weight: NonNegativeFloat = 1.0  # weight of the cGAN term; 0: L1 alone (no discriminator is trained)
    conditional_discriminator: bool = True  # D(a, b) as the paper; False: D(b) alone (the "GAN + L1" row of Table 1)
    width: PositiveInt = 64  # channels of the first U-Net layer (C64); deeper layers up to 8x
    discriminator_width: PositiveInt = 64  # channels of the first PatchGAN layer
    depth: PositiveInt | None = None  # U-Net down-samplings; None: down to a 1 x 1 map (8 for 256 px, 5 for 32, 4 for 28)
    dropout: float = 0.5  # on the first decoder layers (Sec. 3.1)
    dropout_layers: int | None = None  # how many decoder layers get dropout; None: 3, fewer for shallow U-Nets
    norm: Literal["batch", "instance"] = "batch"  # batch norm as the paper (its batch of 1 makes it instance norm)
    patch_layers: PositiveInt | None = None  # PatchGAN stride-2 layers; None: scaled to the image (16 px patch at 32 px)

    @field_validator("objective")
    @classmethod
    def _plain_objective(cls, name: str) -> str:
        if name not in ADVERSARIAL_LOSSES:
            raise ValueError(f"unknown objective; choose one of {', '.join(ADVERSARIAL_LOSSES.names())}")
        objective = ADVERSARIAL_LOSSES.get(name)
        if objective.gradient_penalty or objective.weight_clip:
            raise ValueError("pix2pix takes an objective without penalty or clipping: non-saturating, minimax, lsgan or hinge")
        return name


# ----------------------------------------------------------------------------- networks


def unet_depth(image_size: int) -> int:
    """Stride-2 4 x 4 convolutions (padding 1) that bring a side down to 1: 256 -> 8, 32 -> 5, 28 -> 4 (28, 14, 7, 3, 1)."""
    depth, side = 0, image_size
    while side > 1:
        side, depth = (side + 2 - 4) // 2 + 1, depth + 1
    return depth


class UNetGenerator(nn.Module):
    """a (B, C, H, W) -> G(a) (B, C, H, W) in [-1, 1]. Encoder layer i has width * min(2^i, 8) channels;
    decoder layer i reads the decoder output below it concatenated with encoder layer i's output (the skip)."""

    def __init__(self, channels: int, width: int, depth: int, norm: str, dropout: float, dropout_layers: int) -> None:
        super().__init__()
        widths = [width * min(2**i, 8) for i in range(depth)]  # C64-C128-C256-C512-C512-...
        self.encoder = nn.ModuleList()
        for i in range(depth):  # LeakyReLU before every layer but the first; no norm on the first and the innermost
            norm_here = 0 < i < depth - 1
            self.encoder.append(nn.Sequential(
                nn.Identity() if i == 0 else nn.LeakyReLU(0.2),
                nn.Conv2d(channels if i == 0 else widths[i - 1], widths[i], 4, 2, 1, bias=not norm_here),
                norm_layer(norm, widths[i]) if norm_here else nn.Identity()))
        self.decoder = nn.ModuleList()
        for i in reversed(range(depth)):  # decoder layer i undoes encoder layer i
            inputs = widths[i] if i == depth - 1 else 2 * widths[i]  # the innermost has no skip to concatenate
            outputs = channels if i == 0 else widths[i - 1]
            drop = depth - 1 - i < dropout_layers and i > 0  # the first decoder layers, counted from the innermost
            self.decoder.append(nn.ModuleList([
                nn.ReLU(),
                nn.ConvTranspose2d(inputs, outputs, 4, 2, 1, bias=i == 0),
                nn.Tanh() if i == 0 else nn.Sequential(norm_layer(norm, outputs), nn.Dropout(dropout if drop else 0.0)),
            ]))

    def forward(self, a: Tensor) -> Tensor:
        skips, h = [], a
        for layer in self.encoder:
            skips.append(h)  # the input of encoder layer i: what decoder layer i must come back to (its size)
            h = layer(h)  # (B, widths[i], ceil(side / 2), ...)
        for relu, up, after in self.decoder:
            skip = skips.pop()  # (B, c_{i-1}, 2 side, 2 side) or the input image for the outermost layer
            h = after(up(relu(h), output_size=skip.shape[-2:]))  # (B, c_{i-1}, side of the skip)
            if skips:
                h = torch.cat([h, skip], dim=1)  # (B, 2 c_{i-1}, ...): the skip connection
        return h  # (B, C, H, W) in [-1, 1]


# ----------------------------------------------------------------------------- model


@MODELS.register("pix2pix")
class Pix2Pix(GenerativeModel):
    Config = Pix2PixConfig
    requires = ("a", "b")
    ema_modules = ("generator",)
    phase_summary = "discriminator (if adversarial), generator"

    def __init__(self, config: Pix2PixConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if info.paired is not True:
            raise GenzooError("pix2pix learns from paired images (a[i] and b[i] show the same thing), and these two "
                              "domains are unpaired; use paired data (paired-folder, edges2fashion, data.task=...) or "
                              "train cyclegan for unpaired domains.")
        depth = config.depth or unet_depth(info.image_size)
        if depth > unet_depth(info.image_size):
            raise GenzooError(f"model.depth={depth} down-samples a {info.image_size} px image below 1 pixel; use at most "
                              f"{unet_depth(info.image_size)}, or leave it unset.")
        dropout_layers = config.dropout_layers if config.dropout_layers is not None else min(3, max(depth - 2, 0))
        self.objective = ADVERSARIAL_LOSSES.get(config.objective)
        self.generator = UNetGenerator(info.channels, config.width, depth, config.norm, config.dropout, dropout_layers)
        d_inputs = 2 * info.channels if config.conditional_discriminator else info.channels
        layers = config.patch_layers or patch_layers(info.image_size)
        self.discriminator = PatchDiscriminator(d_inputs, config.discriminator_width, layers, config.norm)
        init_normal(self)

    @property
    def phases(self) -> tuple[Phase, ...]:
        adversarial = (Phase("discriminator"),) if self.config.adversarial_weight else ()
        return (*adversarial, Phase("generator", fresh_batch=not adversarial))  # G on D's batch, as the paper alternates

    def param_groups(self) -> dict[str, list]:
        return {"discriminator": list(self.discriminator.parameters()), "generator": list(self.generator.parameters())}

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"discriminator": self.discriminator_losses, "generator": self.generator_losses}[phase](batch)

    def judge(self, a: Tensor, b: Tensor) -> Tensor:
        """D(a, b): a score per patch (B, 1, h, w); an unconditional D sees b alone."""
        return self.discriminator(torch.cat([a, b], dim=1) if self.config.conditional_discriminator else b)

    def discriminator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        a, b = batch["a"], batch["b"]  # (B, C, H, W) each, b[i] the target of a[i]
        with torch.no_grad():
            fake = self.generator(a)  # (B, C, H, W)
        loss_d_real, loss_d_fake = self.objective.discriminator(self.judge(a, b), self.judge(a, fake))
        total = 0.5 * (loss_d_real + loss_d_fake)  # Sec. 3.3: "we divide the objective by 2 while optimizing D"
        return {"total": total, "loss_d_real": loss_d_real, "loss_d_fake": loss_d_fake}

    def generator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        a, b = batch["a"], batch["b"]
        fake = self.generator(a)  # (B, C, H, W), with dropout
        loss_l1 = (b - fake).abs().mean()  # Eq. 3, per pixel
        losses = {"loss_l1": loss_l1}
        total = self.config.l1_weight * loss_l1
        if self.config.adversarial_weight:
            losses["loss_g"] = self.objective.generator(self.judge(a, fake))  # -log D(a, G(a)) per patch
            total = total + self.config.adversarial_weight * losses["loss_g"]
        return {"total": total, **losses}

    @torch.no_grad()
    def translate(self, x: Tensor, to: str | int | Tensor = "b") -> Tensor:
        """G(a): images of domain a (B, C, H, W) in [-1, 1] -> domain b. pix2pix learns one direction only."""
        if isinstance(to, Tensor) or self.domain_index(to) != 1:
            raise GenzooError(f"this pix2pix model translates {self._names()} only; train another with "
                              "data.direction=BtoA for the other way.")
        return self.generator(x)

    def _names(self) -> str:
        a, b = (self.info.domains or ("a", "b"))[:2]
        return f"{a} (a) -> {b} (b)"

    @torch.no_grad()
    def preview(self, batch: dict[str, Tensor], n: int, seed: int = 0) -> Tensor:
        """Rows of (input a, output G(a), target b, |G(a) - b| shown from black = 0 to white = 2)."""
        a, b = batch["a"][: max(1, n // 4)], batch["b"][: max(1, n // 4)]
        fake = self.generator(a)
        return torch.stack([a, fake, b, (fake - b).abs() - 1], dim=1).flatten(0, 1)  # (4k, C, H, W)

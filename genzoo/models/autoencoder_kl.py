"""The first stage of latent diffusion: a KL-regularised convolutional autoencoder to a small latent image.

Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models" (2022), Sec. 3.1 and
Appendix G: an encoder E maps x (C, H, W) to a Gaussian posterior over a latent image z (c, H/f, W/f),
f = 2^(levels - 1), a decoder D maps z back, and the loss is a reconstruction term plus a very small KL
pull towards N(0, I) ("KL-reg.", weight ~1e-6), so that the latent space stays smooth without the
blurring of a VAE:
    L = sum_pixels rho(x, D(z)) + w_KL * KL(q(z|x) || N(0, I)),   z = mu + sigma * eps
with rho the L1 distance (and optionally a perceptual term) of `genzoo.losses.ImageLoss`; genzoo divides
the whole loss by the number of pixels, so `reconstruction` is per pixel and the KL is weighted by
w_KL / (C H W), the same objective up to scale. An optional patch-based adversarial term (Isola et al.
2017's PatchGAN discriminator with the hinge loss, as in Esser et al. 2021, Eq. 7) sharpens
reconstructions: the decoder adds lambda * w_adv * (-D(x_hat)) from step `adversarial_start`, where
    lambda = ||grad_{G_L} L_rec|| / (||grad_{G_L} L_adv|| + 1e-4)
balances the two terms' gradients at the decoder's last layer G_L.

Networks: residual blocks with GroupNorm and self-attention in the middle, stride-2 convolutions down and
nearest up-sampling + convolution up (the blocks of `genzoo.nn.unet`, without a time embedding). The
second stage (`latent-diffusion`) names a run of this family in `model.first_stage`, encodes its
training images with the posterior mean, and decodes its samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import NonNegativeFloat, NonNegativeInt, PositiveInt, field_validator
from torch import Tensor, nn

from genzoo.errors import ConfigError
from genzoo.losses import ADVERSARIAL_LOSSES, ImageLoss, gaussian_kl
from genzoo.models.autoencoder import ImageDistance, ReconstructionConfig
from genzoo.models.base import DataInfo, GenerativeModel, Phase, Scheduled
from genzoo.nn.unet import ResBlock, SelfAttention, group_norm
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class AutoencoderKLConfig(ReconstructionConfig):
    loss: ImageDistance | dict[ImageDistance, NonNegativeFloat] = "mae"  # L1, as Rombach et al.; or {mae: 1, perceptual: 0.1}
    downsampling: PositiveInt = 4  # f: the latent image is (H/f, W/f); a power of two
    latent_channels: PositiveInt = 3  # c (Rombach et al.: c = 3 at f = 4)
    width: PositiveInt = 32  # channels of the first level
    channel_multipliers: tuple[PositiveInt, ...] = (1, 2, 2)  # channels of level i = width * m_i; log2(f) + 1 levels
    blocks_per_level: PositiveInt = 1
    kl_weight: NonNegativeFloat = 1e-6  # w_KL on the summed KL (Rombach et al., Appendix G)
    adversarial_weight: NonNegativeFloat = 0.0  # w_adv of the patch discriminator's term; 0: no discriminator
    adversarial_start: NonNegativeInt = 0  # the step from which the decoder takes the adversarial term
    discriminator_width: PositiveInt = 32

    @field_validator("downsampling")
    @classmethod
    def _power_of_two(cls, factor: int) -> int:
        if factor & (factor - 1):
            raise ValueError("the downsampling factor must be a power of two (1, 2, 4, 8)")
        return factor


# ----------------------------------------------------------------------------- networks


class Encoder(nn.Module):
    """x (B, C, H, W) -> mu, log sigma^2 (B, c, H/f, W/f) each."""

    def __init__(self, channels: int, config: AutoencoderKLConfig) -> None:
        super().__init__()
        widths = [config.width * m for m in config.channel_multipliers]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, padding=1)]
        current = widths[0]
        for level, out in enumerate(widths):
            for _ in range(config.blocks_per_level):
                layers.append(ResBlock(current, out, 0, 0.0))
                current = out
            if level < len(widths) - 1:
                layers.append(nn.Conv2d(current, current, 3, stride=2, padding=1))  # H -> H/2
        layers += [ResBlock(current, current, 0, 0.0), SelfAttention(current), ResBlock(current, current, 0, 0.0),
                   group_norm(current), nn.SiLU(), nn.Conv2d(current, 2 * config.latent_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)  # (B, c, h, w) each
        return mu, logvar.clamp(-30.0, 20.0)  # as Rombach et al.'s DiagonalGaussianDistribution


class Decoder(nn.Module):
    """z (B, c, h, w) -> x_hat (B, C, h f, w f), unbounded (the loss and `reconstruct` take it as an image)."""

    def __init__(self, channels: int, config: AutoencoderKLConfig) -> None:
        super().__init__()
        widths = [config.width * m for m in config.channel_multipliers]
        current = widths[-1]
        layers: list[nn.Module] = [nn.Conv2d(config.latent_channels, current, 3, padding=1),
                                   ResBlock(current, current, 0, 0.0), SelfAttention(current), ResBlock(current, current, 0, 0.0)]
        for level in reversed(range(len(widths))):
            for _ in range(config.blocks_per_level + 1):
                layers.append(ResBlock(current, widths[level], 0, 0.0))
                current = widths[level]
            if level > 0:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(current, current, 3, padding=1)]
        layers += [group_norm(current), nn.SiLU()]
        self.body = nn.Sequential(*layers)
        self.last = nn.Conv2d(current, channels, 3, padding=1)  # G_L of the adaptive weight

    def forward(self, z: Tensor) -> Tensor:
        return self.last(self.body(z))


class PatchDiscriminator(nn.Module):
    """Isola et al. (2017), PatchGAN: a score per overlapping patch, (B, C, H, W) -> (B, 1, H', W')."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * width, 4 * width, 4, 1, 1, bias=False), nn.BatchNorm2d(4 * width), nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * width, 1, 4, 1, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


# ----------------------------------------------------------------------------- losses


def first_stage_losses(x: Tensor, x_hat: Tensor, mu: Tensor, logvar: Tensor, loss: ImageLoss,
                       kl_weight: float) -> dict[str, Tensor]:
    """The per-pixel objective of the first stage, per image: reconstruction rho(x, x_hat) (mean over pixels),
    the KL summed over latent dimensions, and total = reconstruction + w_KL KL / (C H W). (B,) each."""
    reconstruction, _ = loss(x_hat.float(), x.float())  # (B,)
    kl = gaussian_kl(mu.float().flatten(1), logvar.float().flatten(1))  # (B,): KL(N(mu, sigma^2) || N(0, I))
    return {"total": reconstruction + kl_weight * kl / x[0].numel(), "reconstruction": reconstruction, "kl": kl}


def adaptive_weight(reconstruction: Tensor, adversarial: Tensor, last: Tensor) -> Tensor:
    """Esser et al. (2021), Eq. 7: ||grad_{G_L} L_rec|| / (||grad_{G_L} L_adv|| + 1e-4), clamped to [0, 1e4], no gradient."""
    (g_rec,) = torch.autograd.grad(reconstruction, last, retain_graph=True)
    (g_adv,) = torch.autograd.grad(adversarial, last, retain_graph=True)
    return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, 1e4).detach()


# ----------------------------------------------------------------------------- model


@MODELS.register("autoencoder-kl")
class AutoencoderKL(GenerativeModel):
    Config = AutoencoderKLConfig
    ema_modules = ("encoder", "decoder")
    phase_summary = "autoencoder[, patch discriminator]"

    def __init__(self, config: AutoencoderKLConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        levels = int(math.log2(config.downsampling)) + 1
        if len(config.channel_multipliers) != levels:
            raise ConfigError(f"model.channel_multipliers has {len(config.channel_multipliers)} entries and downsampling "
                              f"{config.downsampling} needs log2({config.downsampling}) + 1 = {levels}, one per level; "
                              "give that many.")
        if info.image_size % config.downsampling:
            raise ConfigError(f"data.image_size={info.image_size} is not a multiple of model.downsampling="
                              f"{config.downsampling}; choose sizes that divide (e.g. 32 with f = 4).")
        self.encoder = Encoder(info.channels, config)
        self.decoder = Decoder(info.channels, config)
        self.loss = ImageLoss(config.loss_weights, config.perceptual_network)
        self.hinge = ADVERSARIAL_LOSSES.get("hinge")
        self.discriminator = PatchDiscriminator(info.channels, config.discriminator_width) if config.adversarial_weight else None
        self.adversarial_on = config.adversarial_start == 0  # set by `schedule`

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        side = self.info.image_size // self.config.downsampling
        return (self.config.latent_channels, side, side)

    @property
    def phases(self) -> tuple[Phase, ...]:
        if self.discriminator is None:
            return (Phase("autoencoder"),)
        return (Phase("autoencoder"), Phase("discriminator", fresh_batch=False))

    def param_groups(self) -> dict[str, list]:
        groups = {"autoencoder": [*self.encoder.parameters(), *self.decoder.parameters()]}
        if self.discriminator is not None:
            groups["discriminator"] = list(self.discriminator.parameters())
        return groups

    def schedule(self, step: int, total: int) -> Scheduled:
        """Whether the decoder takes the adversarial term this step (from `adversarial_start` on)."""
        if self.discriminator is None:
            return Scheduled()
        self.adversarial_on = step >= self.config.adversarial_start
        return Scheduled(values={"adversarial": float(self.adversarial_on)})

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["image"]  # (B, C, H, W) in [-1, 1]
        if phase == "discriminator":
            with torch.no_grad():
                x_hat = self.decoder(self.encoder(x)[0])  # (B, C, H, W): the reconstructions of the posterior mean
            loss_d_real, loss_d_fake = self.hinge.discriminator(self.discriminator(x).float(), self.discriminator(x_hat).float())
            return {"total": loss_d_real + loss_d_fake, "loss_d_real": loss_d_real, "loss_d_fake": loss_d_fake}
        mu, logvar = self.encoder(x)  # (B, c, h, w) each
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # reparameterisation
        x_hat = self.decoder(z)  # (B, C, H, W)
        terms = {name: value.mean() for name, value in first_stage_losses(x, x_hat, mu, logvar, self.loss, self.config.kl_weight).items()}
        if self.discriminator is not None and self.adversarial_on:
            adversarial = self.hinge.generator(self.discriminator(x_hat).float())  # -E D(x_hat)
            weight = adaptive_weight(terms["reconstruction"], adversarial, self.decoder.last.weight) if self.training else 1.0
            terms["adversarial"] = adversarial
            terms["total"] = terms["total"] + self.config.adversarial_weight * weight * adversarial
        return terms

    # -- the latent image, for the second stage

    def encode_latent(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The posterior mean (generator None) or a posterior sample: (B, C, H, W) -> (B, c, H/f, W/f)."""
        mu, logvar = self.encoder(x)
        if generator is None:
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)

    def decode_latent(self, z: Tensor) -> Tensor:
        """Images in [-1, 1] of latent images (B, c, h, w)."""
        return self.decoder(z).clamp(-1, 1)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        return self.encode_latent(x).flatten(1)  # the posterior mean, (B, c h w)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode_latent(self.encode_latent(x))  # (B, C, H, W)

"""GAN: a generator against a discriminator, with the DCGAN architecture.

Goodfellow et al., "Generative Adversarial Nets" (2014): D and G play the minimax game
    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]            (Eq. 1)
trained by alternating k steps of D with one step of G (Algorithm 1). The generator objective is
either the minimax one, minimise log(1 - D(G(z))), or the non-saturating one of Sec. 3, maximise
log D(G(z)) (the default). Both live in `genzoo.losses` as registered objective pairs.

Networks: Radford et al., "DCGAN" (2016), see `genzoo.nn.dcgan`.
"""

from __future__ import annotations

import torch
from pydantic import PositiveInt, field_validator
from torch import Tensor

from genzoo.config import FamilyConfig
from genzoo.losses import ADVERSARIAL_LOSSES
from genzoo.models.base import DataInfo, GenerativeModel, Phase
from genzoo.nn import DownConvStack, UpConvStack, init_dcgan_weights
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class GANConfig(FamilyConfig):
    objective: str = "non-saturating"  # generator/discriminator loss pair: minimax, non-saturating
    latent_dim: PositiveInt = 100  # z ~ N(0, I) of this size (DCGAN uses 100)
    generator_width: PositiveInt = 64  # channels of the last hidden generator layer (ngf)
    discriminator_width: PositiveInt = 64  # channels of the first discriminator layer (ndf)
    discriminator_steps: PositiveInt = 1  # k discriminator steps per generator step (Algorithm 1)

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, name: str) -> str:
        if name not in ADVERSARIAL_LOSSES:
            raise ValueError(f"unknown objective; choose one of {', '.join(ADVERSARIAL_LOSSES.names())}")
        return name


# ----------------------------------------------------------------------------- model


@MODELS.register("gan")
class GAN(GenerativeModel):
    Config = GANConfig
    ema_modules = ("generator",)

    def __init__(self, config: GANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.generator = UpConvStack(config.latent_dim, info.image_size, info.channels, config.generator_width)
        self.discriminator = DownConvStack(info.image_size, info.channels, config.discriminator_width, out_dim=1)
        init_dcgan_weights(self)
        self.objective = ADVERSARIAL_LOSSES.get(config.objective)

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (
            Phase("discriminator", repeats=self.config.discriminator_steps),
            Phase("generator", fresh_batch=False),  # needs only the batch size: reuse the last batch
        )

    def param_groups(self) -> dict[str, list]:
        return {
            "discriminator": list(self.discriminator.parameters()),
            "generator": list(self.generator.parameters()),
        }

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"discriminator": self.discriminator_losses, "generator": self.generator_losses}[phase](batch)

    def discriminator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real = batch["image"]  # (B, C, H, W) in [-1, 1]
        with torch.no_grad():
            fake = self.generator(self.sample_latent(real.shape[0]))  # (B, C, H, W)
        real_logits = self.discriminator(real)  # (B, 1)
        fake_logits = self.discriminator(fake)  # (B, 1)
        loss_d_real, loss_d_fake = self.objective.discriminator(real_logits, fake_logits)
        return {
            "total": loss_d_real + loss_d_fake,
            "loss_d_real": loss_d_real,
            "loss_d_fake": loss_d_fake,
            "d_real": torch.sigmoid(real_logits.detach()).mean(),  # D(x), 1 when D is sure
            "d_fake": torch.sigmoid(fake_logits.detach()).mean(),  # D(G(z))
        }

    def generator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        fake = self.generator(self.sample_latent(batch["image"].shape[0]))  # (B, C, H, W)
        loss_g = self.objective.generator(self.discriminator(fake))
        return {"total": loss_g}

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.config.latent_dim, device=self.device, generator=generator)  # (n, D)

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        return self.generator(self.sample_latent(n, generator))  # (n, C, H, W) in [-1, 1]

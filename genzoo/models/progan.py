"""ProGAN: a GAN grown from 4 x 4 to the full resolution, each doubling faded in.

Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation" (ICLR 2018). The building blocks (equalised learning rate, pixel norm, minibatch stddev, the
growth schedule and the discriminator) are in `genzoo.nn.progressive`, shared with StyleGAN.

- Growth (Sec. 2, Fig. 2): `stable_steps` at 4 x 4, then each doubling fades in over `fade_steps` (alpha
  0 -> 1) and trains `stable_steps` more. The level of detail and alpha are derived from the step in
  `schedule`, so a resumed run continues exactly. Every block is built at the start; only the current
  ones run. Real images are box-downsampled to the current resolution and faded the same way.
  Training runs at the current resolution (cheap early stages); `generate` shows its images at the full
  size (nearest-neighbour upsampling: a 4 x 4 stage gives 4 x 4 blocks).
- Generator (Table 2): z -> pixel norm -> dense to 4 x 4 ("conv 4x4" on the 1 x 1 latent) -> conv 3x3,
  then per doubling: upsample, conv 3x3, conv 3x3; leaky ReLU 0.2 and pixel norm after every
  convolution (Sec. 4.2); a 1x1 to-RGB per resolution, linear output (no tanh; `generate` clamps to
  [-1, 1]).
- Loss (Sec. 6 / Appendix A.1): WGAN-GP (Gulrajani et al. 2017, lambda = 10, one critic step) plus the
  drift term epsilon_drift E[D(x)^2], epsilon_drift = 0.001, which keeps the critic's output near 0.
  Adam lr 0.001, betas (0, 0.99) (the preset).
"""

from __future__ import annotations

import math

import torch
from pydantic import NonNegativeFloat, NonNegativeInt, PositiveInt
from torch import Tensor, nn

from genzoo.config import FamilyConfig
from genzoo.errors import GenzooError
from genzoo.losses import ADVERSARIAL_LOSSES, Objective, gradient_penalty
from genzoo.models.base import DataInfo, GenerativeModel, Phase, Scheduled
from genzoo.nn.progressive import (
    EqualConv2d,
    EqualLinear,
    Growth,
    ProgressiveDiscriminator,
    channel_widths,
    check_resolution,
    fade_reals,
    lrelu,
    pixel_norm,
    resolutions,
    upsample,
    upscale_to,
)
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class ProGANConfig(FamilyConfig):
    objective: Objective = "wgan-gp"  # a registered adversarial objective; the paper's is wgan-gp
    latent_dim: PositiveInt = 512  # z ~ N(0, I), normalised by pixel norm (the paper: 512)
    width: PositiveInt = 16  # feature maps at the final resolution, doubled per halving ...
    max_width: PositiveInt = 512  # ... up to this many (the paper: 512)
    start_resolution: PositiveInt = 4  # the first stage (a power of two)
    fade_steps: NonNegativeInt = 2000  # steps over which each new resolution fades in (the paper: 800k images)
    stable_steps: PositiveInt = 2000  # steps each resolution then trains at alpha = 1 (the first: before any fade)
    minibatch_group: PositiveInt = 4  # samples per minibatch-stddev group
    gradient_penalty: NonNegativeFloat | None = None  # lambda; None: the objective's (10 for wgan-gp)
    drift: NonNegativeFloat = 0.001  # epsilon_drift of E[D(x)^2]
    discriminator_steps: PositiveInt = 1  # critic steps per generator step (the paper: 1)


# ----------------------------------------------------------------------------- networks


class GeneratorBlock(nn.Module):
    """Table 2: upsample, conv 3x3, LReLU, pixel norm, conv 3x3, LReLU, pixel norm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, out_channels, 3)
        self.conv1 = EqualConv2d(out_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = pixel_norm(lrelu(self.conv0(upsample(x))))  # (B, C_out, 2H, 2W)
        return pixel_norm(lrelu(self.conv1(x)))


class ProGANGenerator(nn.Module):
    """z (B, D) -> images (B, C, r, r) at resolution index `top`, the newest block faded in by alpha."""

    def __init__(self, latent_dim: int, size: int, channels: int, widths, start: int) -> None:  # noqa: ANN001
        super().__init__()
        self.sizes = resolutions(size)
        width = widths(4)
        # Table 2's "conv 4x4" on a 1 x 1 latent is a dense layer; their code gives it the fan-in of a 4x4
        # convolution (D * 16), i.e. gain sqrt(2) / 4 over fan-in D.
        self.dense = EqualLinear(latent_dim, width * 16, gain=math.sqrt(2) / 4)
        self.conv = EqualConv2d(width, width, 3)
        self.blocks = nn.ModuleList([GeneratorBlock(widths(r // 2), widths(r)) for r in self.sizes[1:]])
        self.to_rgb = nn.ModuleDict({str(r): EqualConv2d(widths(r), channels, 1, gain=1.0) for r in self.sizes if r >= start})

    def forward(self, z: Tensor, top: int, alpha: float) -> Tensor:
        x = pixel_norm(z)  # (B, D): the latent normalised too
        x = pixel_norm(lrelu(self.dense(x).view(len(z), -1, 4, 4)))  # (B, C_4, 4, 4)
        x = pixel_norm(lrelu(self.conv(x)))
        previous = x
        for block in self.blocks[:top]:
            previous, x = x, block(x)  # (B, C_r, r, r)
        images = self.to_rgb[str(self.sizes[top])](x)  # (B, C, r, r)
        if alpha < 1:  # Fig. 2 (b): the new block's images blended with the upsampled ones of the block before
            images = torch.lerp(upsample(self.to_rgb[str(self.sizes[top - 1])](previous)), images, alpha)
        return images


# ----------------------------------------------------------------------------- model


@MODELS.register("progan")
class ProGAN(GenerativeModel):
    Config = ProGANConfig
    ema_modules = ("generator",)
    phase_summary = "discriminator (WGAN-GP + drift), generator; grows 4x4 -> full size"
    blurred = False  # blur when resampling (StyleGAN does)

    def __init__(self, config: ProGANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.size = check_resolution(info.image_size, config.start_resolution, type(self).__name__)
        self.objective = ADVERSARIAL_LOSSES.get(config.objective)
        self.penalty = self.objective.gradient_penalty if config.gradient_penalty is None else config.gradient_penalty
        self.growth = Growth(config.start_resolution, self.size, config.fade_steps, config.stable_steps)
        self.start_index = resolutions(self.size).index(config.start_resolution)
        widths = channel_widths(config.width, config.max_width, self.size)
        self.generator = self.build_generator(widths)
        self.discriminator = ProgressiveDiscriminator(self.size, info.channels, widths, config.start_resolution,
                                                      config.minibatch_group, use_blur=self.blurred)
        self.top, self.alpha = self.start_index, 1.0  # resolution index and fade-in; set by `schedule`
        self.schedule(0, 0)

    def build_generator(self, widths) -> nn.Module:  # noqa: ANN001
        return ProGANGenerator(self.config.latent_dim, self.size, self.info.channels, widths, self.config.start_resolution)

    # -- the trainer's interface

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("discriminator", repeats=self.config.discriminator_steps), Phase("generator", fresh_batch=False))

    def param_groups(self) -> dict[str, list]:
        return {"discriminator": list(self.discriminator.parameters()), "generator": list(self.generator.parameters())}

    def schedule(self, step: int, total: int) -> Scheduled:
        """The level of detail and fade-in alpha after `step` steps (Karras et al. 2018, Sec. 2)."""
        level, self.alpha = self.growth.at(step)
        self.top = self.start_index + level
        return Scheduled(values={"resolution": float(self.resolution), "alpha": self.alpha})

    @property
    def resolution(self) -> int:
        """The side of the images the networks work at now."""
        return 4 * 2**self.top

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return getattr(self, f"{phase}_losses")(batch)

    def critic(self, images: Tensor) -> Tensor:
        """D at the current level of detail: (B, C, r, r) -> (B, 1)."""
        return self.discriminator(images, self.top, self.alpha)

    def fakes(self, n: int, generator_phase: bool = False) -> Tensor:
        """n images of the generator at the current level of detail, (n, C, r, r), from the global RNG."""
        return self.generator(torch.randn(n, self.config.latent_dim, device=self.device), self.top, self.alpha)

    # -- losses

    def discriminator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real = fade_reals(batch["image"], self.resolution, self.alpha)  # (B, C, r, r)
        with torch.no_grad():
            fake = self.fakes(len(real))  # (B, C, r, r)
        real_score, fake_score = self.critic(real), self.critic(fake)  # (B, 1) each
        loss_d_real, loss_d_fake = self.objective.discriminator(real_score, fake_score)
        losses = {"loss_d_real": loss_d_real, "loss_d_fake": loss_d_fake}
        total = loss_d_real + loss_d_fake
        if self.penalty:  # Gulrajani et al. 2017, Eq. 3 (fp32)
            losses["gradient_penalty"] = gradient_penalty(self.critic, real, fake)
            total = total + self.penalty * losses["gradient_penalty"]
        if self.config.drift:  # Karras et al. 2018, Appendix A.1: + epsilon_drift E[D(x)^2]
            losses["drift"] = real_score.float().pow(2).mean()
            total = total + self.config.drift * losses["drift"]
        if self.objective.probability:  # what D believes, 1 = real
            losses["d_real"] = torch.sigmoid(real_score.detach()).mean()
            losses["d_fake"] = torch.sigmoid(fake_score.detach()).mean()
        else:  # the critic's estimate of the distance between the distributions
            losses["score_gap"] = real_score.detach().mean() - fake_score.detach().mean()
        return {"total": total, **losses}

    def generator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        fake = self.fakes(batch["image"].shape[0], generator_phase=True)  # (B, C, r, r)
        return {"total": self.objective.generator(self.critic(fake))}

    # -- sampling

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), (n, D)."""
        return torch.randn(n, self.config.latent_dim, device=self.device, generator=generator)

    def _no_labels(self, labels: Tensor | None) -> None:
        if labels is not None:
            raise GenzooError(f"a {type(self).__name__} model is unconditional and takes no labels; drop them.")

    def decode_latent(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """G(z) at the current level of detail, shown at the full size: (n, C, R, R), not clamped; differentiable."""
        self._no_labels(labels)
        return upscale_to(self.generator(z, self.top, self.alpha), self.size)

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None,
                 z: Tensor | None = None) -> Tensor:
        """(n, C, R, R) in [-1, 1]: G's linear outputs clamped, as the paper's code does when it saves images."""
        z = self.sample_latent(n, generator) if z is None else z
        return self.decode_latent(z, labels).clamp(-1, 1)

    def sampling_protocol(self) -> dict:
        """For scores' protocols: the level of detail the samples come from."""
        return {"resolution": self.resolution, "alpha": self.alpha, "shown_at": self.size}

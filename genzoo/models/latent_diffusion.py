"""Latent diffusion with a prompt: DDPM/DDIM in the latent space of a first-stage autoencoder, text by cross-attention.

Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models" (2022). A first stage
(`autoencoder-kl`, its own run, named in `model.first_stage`) maps an image x to a latent image
z = E(x) (c, H/f, W/f); the diffusion model of `genzoo.models.ddpm` is trained on z instead of x, with
the simple loss conditioned on a caption y (Eq. 3):
    L_LDM = E_{E(x), y, eps ~ N(0, I), t} || eps - eps_theta(z_t, t, tau_theta(y)) ||^2
where tau_theta is a Transformer over the caption's tokens trained from scratch with the U-Net
(`genzoo.nn.text`; Sec. 4.3.1) and eps_theta attends to its token embeddings through cross-attention
(`genzoo.nn.unet`). Samples are decoded back to pixels, x = D(z_0). Latents are rescaled to unit
variance by a scalar 1/sigma estimated on the first training batch (Sec. 4.3.2 and Appendix G; or
fixed by `latent_scale`), and the samplers leave them unclipped (they are not bounded like pixels).
With `first_stage: null` the same model diffuses pixels: the pixel-space baseline at the same U-Net.

Classifier-free guidance with prompts (Ho & Salimans 2022): in training the caption is replaced by the
empty prompt with probability `prompt_dropout`, and sampling prefers eps(z_t | prompt) to
eps(z_t | empty prompt):
    eps~ = eps(z_t, t, tau("")) + s * (eps(z_t, t, tau(y)) - eps(z_t, t, tau("")))
(s = 1: the conditional model, s = 0: the unconditional one; one network pass each, two otherwise).
The samplers, schedules and the guidance are those of `genzoo.models.ddpm`, reused, not copied.
`generate(n)` without prompts draws them from the training captions the model saw (`CaptionBank`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat, PositiveInt, field_validator
from torch import Tensor, nn

from genzoo.data.captions import Tokenizer
from genzoo.errors import ConfigError, GenzooError
from genzoo.models.base import DataInfo, GenerativeModel
from genzoo.models.ddpm import (
    Denoiser,
    DiffusionConfig,
    Schedule,
    diffusion_protocol,
    guided,
    q_sample,
    run_sampler,
    sampling_function,
    to_target,
    to_x0_eps,
)
from genzoo.nn.text import CaptionBank, TextEncoder, empty_prompts
from genzoo.nn.unet import UNet
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class LatentDiffusionConfig(DiffusionConfig):
    first_stage: str | None = None  # run folder of an autoencoder-kl (made absolute); None: diffuse pixels
    latent_scale: PositiveFloat | None = None  # z -> scale * z; None: 1 / std of the first batch's latents
    width: PositiveInt = 64
    channel_multipliers: tuple[PositiveInt, ...] = (1, 2)
    attention_resolutions: tuple[PositiveInt, ...] = (8, 4)  # sides of the U-Net's feature maps with self-attention
    cross_attention_resolutions: tuple[PositiveInt, ...] | None = None  # sides with cross-attention; None: every level
    attention_heads: PositiveInt = 4
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    text_width: PositiveInt = 64  # width of the text encoder's token embeddings (the context dimension)
    text_depth: PositiveInt = 2  # Transformer blocks of the text encoder
    text_heads: PositiveInt = 2
    prompt_dropout: float = Field(0.1, ge=0.0, le=1.0)  # p(caption -> empty prompt) in training
    guidance: float = 3.0  # default guidance scale s; 1 = plain conditional sampling

    @field_validator("first_stage")
    @classmethod
    def _absolute(cls, path: str | None) -> str | None:
        return None if path is None else str(Path(path).expanduser().absolute())


# ----------------------------------------------------------------------------- the first stage and the text


def load_first_stage(path: str, info: DataInfo) -> GenerativeModel:
    """The autoencoder-kl run at `path` (its EMA weights when it has them), frozen; refused in one sentence when
    it is missing, of another family, or trained on images of another shape than `info`'s."""
    from genzoo.loading import load
    from genzoo.models.autoencoder_kl import AutoencoderKL

    if not (Path(path) / "config.json").is_file():
        raise ConfigError(f"model.first_stage {path!r} is not a genzoo run folder (no config.json); train the first "
                          "stage there first (genzoo train autoencoder-kl-shapes --out DIR) or name its run folder.")
    model = load(path)
    if not isinstance(model, AutoencoderKL):
        raise ConfigError(f"model.first_stage {path!r} is a {type(model).__name__} run, not an autoencoder-kl one; "
                          "name a run of `genzoo train autoencoder-kl`.")
    trained_on, data = model.info, info
    if (trained_on.channels, trained_on.image_size) != (data.channels, data.image_size):
        raise ConfigError(f"model.first_stage {path!r} was trained on {trained_on.channels}x{trained_on.image_size}x"
                          f"{trained_on.image_size} images and this data has {data.channels}x{data.image_size}x"
                          f"{data.image_size}; train the first stage on the same data.")
    model.discriminator = None  # only the encoder and decoder are part of the second stage
    return model.requires_grad_(False).eval()


def drop_prompts(tokens: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Each caption (row of tokens (B, L)) replaced by the empty prompt with probability p, independently."""
    drop = torch.rand(len(tokens), device=tokens.device, generator=generator) < p  # (B,)
    return torch.where(drop[:, None], empty_prompts(len(tokens), tokens.shape[1], tokens.device), tokens)


class LatentScale(nn.Module):
    """The scalar that brings latents to unit variance (a buffer: 0 until the first batch sets it)."""

    def __init__(self, fixed: float | None) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(float(fixed or 0.0)))

    @torch.no_grad()
    def fit(self, z: Tensor) -> None:
        """Set scale = 1 / std(z) if it is not set yet (on the device: no host synchronisation)."""
        self.scale.copy_(torch.where(self.scale > 0, self.scale, 1.0 / z.float().std().clamp(min=1e-6)))


# ----------------------------------------------------------------------------- model


@MODELS.register("latent-diffusion")
class LatentDiffusion(GenerativeModel):
    Config = LatentDiffusionConfig
    ema_modules = ("denoiser", "text_encoder", "captions", "latent")

    def __init__(self, config: LatentDiffusionConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.requires = ("image", "caption")
        self.tokenizer = Tokenizer.from_info(info, "latent-diffusion")
        self.first_stage = load_first_stage(config.first_stage, info) if config.first_stage else None
        channels, side, _ = self.first_stage.latent_shape if self.first_stage else (info.channels, info.image_size, info.image_size)
        self.latent_size = (channels, side, side)
        sides = [side]
        for _ in config.channel_multipliers[1:]:
            sides.append((sides[-1] + 1) // 2)
        self.text_encoder = TextEncoder(info.vocab_size, info.sequence_length, config.text_width, config.text_depth, config.text_heads)
        self.denoiser = UNet(channels, side, config.width, config.channel_multipliers, config.blocks_per_level,
                             config.attention_resolutions, config.dropout, config.attention_heads, 0, config.text_width,
                             config.cross_attention_resolutions or tuple(sides))
        self.captions = CaptionBank(info.sequence_length)
        self.latent = LatentScale(config.latent_scale if self.first_stage else 1.0)
        self.noise_schedule = Schedule.named(config.schedule, config.timesteps)
        self.register_buffer("alpha_bar", self.noise_schedule.alpha_bar.float(), persistent=False)  # (T,)

    def param_groups(self) -> dict[str, list]:
        return {"main": [*self.denoiser.parameters(), *self.text_encoder.parameters()]}  # the first stage stays fixed

    @torch.no_grad()
    def to_latent(self, x: Tensor) -> Tensor:
        """scale * E(x): the posterior mean, rescaled (x itself in pixel space). (B, c, h, w)."""
        if self.first_stage is None:
            return x
        z = self.first_stage.encode_latent(x)  # (B, c, h, w)
        self.latent.fit(z)
        return z * self.latent.scale

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        tokens = batch["caption"]  # (B, L)
        self.captions.add(tokens)
        z0 = self.to_latent(batch["image"])  # (B, c, h, w)
        t = torch.randint(0, self.config.timesteps, (z0.shape[0],), device=z0.device)  # t ~ U{1..T}
        eps = torch.randn_like(z0)
        z_t = q_sample(z0, t, eps, self.alpha_bar)  # Ho et al. Eq. 4
        context, mask = self.text_encoder(drop_prompts(tokens, self.config.prompt_dropout))  # (B, L, D), (B, L)
        output = self.denoiser(z_t, t, None, context, mask).float()  # (B, c, h, w)
        target = to_target(z0, eps, self.alpha_bar[t].view(-1, 1, 1, 1), self.config.prediction)
        return {"total": F.mse_loss(output, target)}  # L_LDM, Eq. 3

    # -- sampling

    def predict_eps(self, z_t: Tensor, t: Tensor, tokens: Tensor) -> Tensor:
        """eps_theta(z_t, t, tau(y)) for prompt tokens (B, L), as eps (B, c, h, w)."""
        context, mask = self.text_encoder(tokens)
        output = self.denoiser(z_t, t, None, context, mask).float()
        return to_x0_eps(output, z_t, self.alpha_bar[t].view(-1, 1, 1, 1), self.config.prediction)[1]

    def eps_denoiser(self, tokens: Tensor, guidance: float) -> Denoiser:
        """(z_t, t) -> eps for these prompts, with classifier-free guidance against the empty prompt when s != 1."""
        empty = empty_prompts(len(tokens), tokens.shape[1], tokens.device)
        if guidance == 1.0:
            return lambda z_t, t: self.predict_eps(z_t, t, tokens)
        if guidance == 0.0:  # the unconditional prediction alone, one pass
            return lambda z_t, t: self.predict_eps(z_t, t, empty)
        return guided(self.predict_eps, tokens, empty, guidance)

    def sampling_protocol(self) -> dict:
        """How `generate` samples by default, for the protocol of every score of its samples."""
        space = f"latent {'x'.join(map(str, self.latent_size))} of {self.config.first_stage}" if self.first_stage else "pixels"
        return {**diffusion_protocol(self.config, guided=True), "space": space, "prompts": "training captions"}

    @torch.no_grad()
    def preview(self, batch: dict[str, Tensor], n: int, seed: int = 0) -> Tensor:
        """Samples for the captions of the preview batch (fixed prompts, so the grids show progress)."""
        tokens = batch["caption"][:n]
        return self.sample(tokens, torch.Generator(device=self.device).manual_seed(seed))

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None,
                 prompts: str | list[str] | None = None, steps: int | None = None, sampler: str | None = None,
                 eta: float | None = None, guidance: float | None = None, progress: bool = False) -> Tensor:
        """n images (n, C, H, W) in [-1, 1] for one prompt, one per sample, or (None) prompts drawn from the
        training captions; steps, sampler, eta and guidance default to the config's."""
        if labels is not None:
            raise GenzooError("this text-to-image model takes prompts, not class labels; give --prompt instead of --labels.")
        tokens = self.captions.draw(n, generator) if prompts is None else self.tokenizer.prompts(prompts, n)
        return self.sample(tokens.to(self.device), generator, steps, sampler, eta, guidance, progress)

    @torch.no_grad()
    def sample(self, tokens: Tensor, generator: torch.Generator | None = None, steps: int | None = None,
               sampler: str | None = None, eta: float | None = None, guidance: float | None = None,
               progress: bool = False) -> Tensor:
        """Images (n, C, H, W) in [-1, 1] for prompt tokens (n, L)."""
        sample = sampling_function(self.config, sampler, steps, eta)
        noise = torch.randn((len(tokens), *self.latent_size), device=self.device, generator=generator)  # z_T ~ N(0, I)
        denoiser = self.eps_denoiser(tokens, self.config.guidance if guidance is None else guidance)
        z = run_sampler(sample, denoiser, self.noise_schedule, noise, generator, progress,
                        clip=None if self.first_stage else 1.0)  # (n, c, h, w)
        if self.first_stage is None:
            return z
        return torch.cat([self.first_stage.decode_latent(part / self.latent.scale) for part in z.split(256)])

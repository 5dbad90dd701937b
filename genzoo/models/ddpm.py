"""Diffusion: DDPM training, DDPM and DDIM sampling, classifier-free guidance.

Ho et al., "Denoising Diffusion Probabilistic Models" (2020). The forward process adds Gaussian
noise in T steps with variances beta_1..beta_T; with alpha_t = 1 - beta_t and
abar_t = prod_{s<=t} alpha_s it has the closed form (Eq. 4)
    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),   i.e.  x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.
A U-Net (`genzoo.nn.unet`) is trained with the simple loss (Eq. 14) ||target - net(x_t, t)||^2 at a
uniformly drawn t, where the target is the noise eps (Ho et al.), the clean image x_0, or the velocity
v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho 2022, Sec. 4); all three convert exactly
into each other given x_t (`to_x0_eps`).

Schedules (`SCHEDULES`): `linear`, beta from 1e-4 to 0.02 (Ho et al. Sec. 4), and `cosine`,
abar_t = f(t) / f(0), f(t) = cos^2((t/T + s) / (1 + s) * pi/2), s = 0.008, betas clipped at 0.999
(Nichol & Dhariwal 2021, Eq. 17).

Samplers are pure functions of (denoiser, schedule, noise), the denoiser mapping (x_t, t) to eps:
- `ddpm_sample`: ancestral sampling from the posterior q(x_{t-1} | x_t, x_0) of Eqs. 6-7 with the
  predicted x_0 clipped to [-1, 1]; with fewer steps than T it runs on the respaced schedule of
  Nichol & Dhariwal (2021), Sec. 4 (betas 1 - abar_t / abar_s between the kept timesteps);
- `ddim_sample`: Song et al., "Denoising Diffusion Implicit Models" (2021), Eq. 12 with sigma(eta) of
  Eq. 16, on any subsequence of timesteps; eta = 0 is deterministic, eta = 1 is DDPM.
Class conditioning: the label embedding is replaced by a null class with probability `label_dropout`
in training, and sampling uses classifier-free guidance (Ho & Salimans 2022, Eq. 6):
    eps = eps(x_t, null) + s * (eps(x_t, y) - eps(x_t, null))     (s = 1: conditional, s = 0: unconditional).
Timesteps are indexed 0..T-1 in code for the paper's 1..T.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveInt, model_validator
from torch import Tensor

from genzoo.config import FamilyConfig
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, GenerativeModel, class_labels
from genzoo.nn.unet import UNet
from genzoo.registry import MODELS

Denoiser = Callable[[Tensor, Tensor], Tensor]  # (x_t (B, C, H, W), t (B,)) -> eps prediction (B, C, H, W)

# ----------------------------------------------------------------------------- config


class DiffusionConfig(FamilyConfig):
    """The settings every diffusion family shares: process, U-Net, default sampler."""

    timesteps: PositiveInt = 1000  # T
    schedule: Literal["linear", "cosine"] = "linear"  # Ho et al. 2020 / Nichol & Dhariwal 2021
    prediction: Literal["eps", "x0", "v"] = "eps"  # what the network predicts (and the simple loss targets)
    width: PositiveInt = 64  # channels of the first U-Net level
    channel_multipliers: tuple[PositiveInt, ...] = (1, 2, 2)  # channels of level i = width * m_i; one level per entry
    blocks_per_level: PositiveInt = 2  # residual blocks per level (one more on the way up)
    attention_resolutions: tuple[PositiveInt, ...] = (14,)  # feature-map sides with self-attention (28 -> 14 -> 7)
    attention_heads: PositiveInt = 1
    dropout: float = Field(0.1, ge=0.0, lt=1.0)  # in the residual blocks (0.1 for CIFAR-10 in Ho et al.)
    sampler: Literal["ddpm", "ddim"] = "ddim"  # default sampler of generate()
    sampling_steps: PositiveInt = 50  # default number of sampling steps (<= timesteps)
    eta: NonNegativeFloat = 0.0  # DDIM eta: 0 deterministic, 1 = DDPM's noise
    guidance: float = 1.0  # default guidance scale s of a conditional model; 1 = plain conditional sampling

    @model_validator(mode="after")
    def _steps_within_t(self) -> DiffusionConfig:
        if self.sampling_steps > self.timesteps:
            raise ValueError(f"sampling_steps must be at most timesteps ({self.timesteps})")
        return self


class DDPMConfig(DiffusionConfig):
    conditional: bool = False  # class-conditional (needs labels), with classifier-free guidance
    label_dropout: float = Field(0.1, ge=0.0, le=1.0)  # p(label -> null class) in training (Ho & Salimans: 0.1-0.2)

    @model_validator(mode="after")
    def _guidance_needs_labels(self) -> DDPMConfig:
        if self.guidance != 1.0 and not self.conditional:
            raise ValueError("guidance needs conditional=true")
        return self


# ----------------------------------------------------------------------------- schedules


def linear_betas(timesteps: int) -> Tensor:
    """Ho et al. (2020), Sec. 4: beta_t linear from 1e-4 to 0.02 (T = 1000). (T,) float64."""
    return torch.linspace(1e-4, 0.02, timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int, s: float = 0.008) -> Tensor:
    """Nichol & Dhariwal (2021), Eq. 17: abar_t = f(t)/f(0), beta_t = min(1 - abar_t/abar_{t-1}, 0.999). (T,) float64."""
    t = torch.arange(timesteps + 1, dtype=torch.float64)  # 0..T
    f = torch.cos((t / timesteps + s) / (1 + s) * math.pi / 2) ** 2  # (T + 1,)
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)  # (T,)


SCHEDULES: dict[str, Callable[[int], Tensor]] = {"linear": linear_betas, "cosine": cosine_betas}


@dataclass(frozen=True)
class Schedule:
    """betas and abar_t = prod_{s<=t} (1 - beta_s), (T,) float64 on the CPU."""

    betas: Tensor

    @classmethod
    def named(cls, name: str, timesteps: int) -> Schedule:
        return cls(SCHEDULES[name](timesteps))

    @property
    def alpha_bar(self) -> Tensor:
        return torch.cumprod(1 - self.betas, dim=0)  # (T,)

    @property
    def timesteps(self) -> int:
        return len(self.betas)


def q_sample(x0: Tensor, t: Tensor, eps: Tensor, alpha_bar: Tensor) -> Tensor:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Ho et al. Eq. 4). abar_t: the schedule's (T,) values."""
    abar = alpha_bar.to(x0.device, torch.float32)[t].view(-1, 1, 1, 1)  # (B, 1, 1, 1)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * eps


def to_target(x0: Tensor, eps: Tensor, abar: Tensor, prediction: str) -> Tensor:
    """The regression target of a prediction type: eps, x0, or v = sqrt(abar) eps - sqrt(1 - abar) x0."""
    if prediction == "v":
        return abar.sqrt() * eps - (1 - abar).sqrt() * x0  # Salimans & Ho (2022), Sec. 4
    return {"eps": eps, "x0": x0}[prediction]


def to_x0_eps(output: Tensor, x_t: Tensor, abar: Tensor, prediction: str) -> tuple[Tensor, Tensor]:
    """Exact (x0, eps) from a network output of type `prediction` at x_t, with x_t = a x0 + sigma eps, a^2 + sigma^2 = 1."""
    a, sigma = abar.sqrt(), (1 - abar).sqrt()
    if prediction == "eps":
        return (x_t - sigma * output) / a, output
    if prediction == "x0":
        return output, (x_t - a * output) / sigma
    return a * x_t - sigma * output, sigma * x_t + a * output  # v: x0 = a x_t - sigma v, eps = sigma x_t + a v


# ----------------------------------------------------------------------------- samplers


def timestep_sequence(timesteps: int, steps: int) -> list[int]:
    """`steps` timesteps evenly spaced from T-1 down to 0 (all T when steps = T), descending."""
    if not 1 <= steps <= timesteps:
        raise GenzooError(f"the number of sampling steps must be between 1 and the schedule's T = {timesteps}; got {steps}.")
    return [round(x) for x in torch.linspace(timesteps - 1, 0, steps, dtype=torch.float64).tolist()]


def _progress(iterable: list, description: str, enabled: bool):  # noqa: ANN202
    if not enabled:
        return iterable
    from rich.console import Console
    from rich.progress import track

    return track(iterable, description=description, console=Console(stderr=True), transient=True)


def _pairs(schedule: Schedule, steps: int) -> list[tuple[int, int, float, float]]:
    """(t, s, abar_t, abar_s) for each step from t to the next kept timestep s < t (s = -1: abar = 1)."""
    ts = timestep_sequence(schedule.timesteps, steps)
    alpha_bar = schedule.alpha_bar.tolist()
    return [(t, s, alpha_bar[t], alpha_bar[s] if s >= 0 else 1.0) for t, s in zip(ts, ts[1:] + [-1])]


def _clip(x: Tensor, clip: float | None) -> Tensor:
    return x if clip is None else x.clamp(-clip, clip)


def _predict(denoiser: Denoiser, x: Tensor, t: int, abar_t: float, clip: float | None) -> tuple[Tensor, Tensor]:
    """x0 clipped to [-clip, clip] (not at all for clip None) and the eps consistent with it, (B, C, H, W) each."""
    eps = denoiser(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)).to(x.dtype)
    x0 = _clip((x - math.sqrt(1 - abar_t) * eps) / math.sqrt(abar_t), clip)
    return x0, (x - math.sqrt(abar_t) * x0) / math.sqrt(1 - abar_t)


@torch.no_grad()
def ddpm_sample(denoiser: Denoiser, schedule: Schedule, noise: Tensor, steps: int | None = None,
                generator: torch.Generator | None = None, progress: bool = False, clip: float | None = 1.0) -> Tensor:
    """Ancestral sampling (Ho et al. Algorithm 2 through the posterior of Eqs. 6-7), x_T = noise -> x_0.
    clip: the range the predicted x_0 is clipped to (data in [-1, 1]); None for data without bounds (latents)."""
    x = noise if noise.dtype == torch.float64 else noise.float()  # (B, C, H, W), fp32 under autocast
    for t, s, abar_t, abar_s in _progress(_pairs(schedule, steps or schedule.timesteps), "DDPM", progress):
        x0, _ = _predict(denoiser, x, t, abar_t, clip)
        beta = 1 - abar_t / abar_s  # beta_t of the (respaced) schedule
        mean = (math.sqrt(abar_s) * beta * x0 + math.sqrt(1 - beta) * (1 - abar_s) * x) / (1 - abar_t)  # mu~_t, Eq. 7
        if s < 0:
            return _clip(mean, clip)  # the last step adds no noise; mean = x0 there
        variance = (1 - abar_s) / (1 - abar_t) * beta  # beta~_t, Eq. 7
        x = mean + math.sqrt(variance) * torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
    return _clip(x, clip)


@torch.no_grad()
def ddim_sample(denoiser: Denoiser, schedule: Schedule, noise: Tensor, steps: int | None = None, eta: float = 0.0,
                generator: torch.Generator | None = None, progress: bool = False, clip: float | None = 1.0) -> Tensor:
    """DDIM (Song et al. 2021, Eq. 12) from x_T = noise over `steps` timesteps; eta = 0 is deterministic;
    clip as for `ddpm_sample`."""
    x = noise if noise.dtype == torch.float64 else noise.float()  # (B, C, H, W), fp32 under autocast
    for t, s, abar_t, abar_s in _progress(_pairs(schedule, steps or schedule.timesteps), f"DDIM eta={eta:g}", progress):
        x0, eps = _predict(denoiser, x, t, abar_t, clip)
        sigma = eta * math.sqrt((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s))  # Eq. 16
        x = math.sqrt(abar_s) * x0 + math.sqrt(max(1 - abar_s - sigma**2, 0.0)) * eps  # Eq. 12: predicted x0, direction to x_t
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)  # + random noise
    return _clip(x, clip)


SAMPLERS = {"ddpm": ddpm_sample, "ddim": ddim_sample}


def classifier_free_guidance(eps_conditional: Tensor, eps_unconditional: Tensor, scale: float) -> Tensor:
    """Ho & Salimans (2022), Eq. 6: eps_uncond + s * (eps_cond - eps_uncond)."""
    return eps_unconditional + scale * (eps_conditional - eps_unconditional)


def guided(denoiser: Callable[[Tensor, Tensor, Tensor], Tensor], labels: Tensor, null: Tensor, scale: float) -> Denoiser:
    """A guided denoiser (x_t, t) -> eps from a conditional one (x_t, t, y) -> eps: one pass of batch 2B
    (the labels, then the null class), combined by `classifier_free_guidance`."""

    def eps(x_t: Tensor, t: Tensor) -> Tensor:
        both = denoiser(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([labels, null]))  # (2B, C, H, W)
        return classifier_free_guidance(*both.chunk(2), scale)

    return eps


def resolve_sampling(config: DiffusionConfig, sampler: str | None = None, steps: int | None = None,
                     eta: float | None = None) -> tuple[str, int, float]:
    """(sampler, steps, eta), checked; unset values are the config's, and DDPM asked for by name runs all T steps."""
    sampler = sampler or config.sampler
    if sampler not in SAMPLERS:
        raise GenzooError(f"unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}.")
    if eta is not None and (sampler != "ddim" or eta < 0):
        raise GenzooError(f"eta is the noise of the ddim sampler, a number >= 0; got eta={eta} with sampler {sampler}.")
    if steps is None:
        steps = config.timesteps if (sampler == "ddpm" and config.sampler != "ddpm") else config.sampling_steps
    timestep_sequence(config.timesteps, steps)  # checks 1 <= steps <= T
    return sampler, steps, config.eta if eta is None else eta


def sampling_function(config: DiffusionConfig, sampler: str | None = None, steps: int | None = None,
                      eta: float | None = None) -> Callable[..., Tensor]:
    """The sampler `generate` runs, with its steps and eta checked and bound: (denoiser, schedule, noise,
    generator=, progress=, clip=) -> x_0."""
    sampler, steps, eta = resolve_sampling(config, sampler, steps, eta)
    options = {"eta": eta} if sampler == "ddim" else {}
    return lambda denoiser, schedule, noise, **kwargs: SAMPLERS[sampler](denoiser, schedule, noise, steps, **options, **kwargs)


def run_sampler(sample: Callable[..., Tensor], denoiser: Denoiser, schedule: Schedule, noise: Tensor,
                generator: torch.Generator | None, progress: bool, clip: float | None = 1.0) -> Tensor:
    """x_T = noise -> x_0 with a `sampling_function`, in bf16 autocast and channels_last on CUDA, fp32 on the CPU."""
    on_cuda = noise.device.type == "cuda"
    if on_cuda:
        noise = noise.contiguous(memory_format=torch.channels_last)
    with torch.autocast(noise.device.type, dtype=torch.bfloat16, enabled=on_cuda):
        return sample(denoiser, schedule, noise, generator=generator, progress=progress, clip=clip)


def diffusion_protocol(config: DiffusionConfig, guided: bool, sampler: str | None = None, steps: int | None = None,
                       eta: float | None = None, guidance: float | None = None) -> dict:
    """How `generate` samples with these options (None: the config's), for the protocol of every score."""
    sampler, steps, eta = resolve_sampling(config, sampler, steps, eta)
    return {"sampler": sampler, "steps": steps, "timesteps": config.timesteps, "schedule": config.schedule,
            **({"eta": eta} if sampler == "ddim" else {}),
            **({"guidance": config.guidance if guidance is None else guidance} if guided else {})}


# ----------------------------------------------------------------------------- model


@MODELS.register("ddpm")
class DDPM(GenerativeModel):
    Config = DDPMConfig
    ema_modules = ("denoiser",)

    def __init__(self, config: DDPMConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if config.conditional and not info.num_classes:
            raise GenzooError("a conditional diffusion model needs class labels, and this dataset has none; "
                              "use a labelled dataset or model.conditional=false.")
        self.conditional = config.conditional
        self.num_classes = (info.num_classes or 0) if config.conditional else 0
        self.requires = ("image", "label") if config.conditional else ("image",)
        self.denoiser = UNet(info.channels, info.image_size, config.width, config.channel_multipliers,
                             config.blocks_per_level, config.attention_resolutions, config.dropout,
                             config.attention_heads, self.num_classes)
        self.noise_schedule = Schedule.named(config.schedule, config.timesteps)
        self.register_buffer("alpha_bar", self.noise_schedule.alpha_bar.float(), persistent=False)  # (T,)

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x0 = batch["image"]  # (B, C, H, W) in [-1, 1]
        t = torch.randint(0, self.config.timesteps, (x0.shape[0],), device=x0.device)  # t ~ U{1..T}
        eps = torch.randn_like(x0)  # (B, C, H, W)
        x_t = q_sample(x0, t, eps, self.alpha_bar)  # Eq. 4
        labels = None
        if self.num_classes:  # label dropout: train the null class too, for classifier-free guidance
            drop = torch.rand(x0.shape[0], device=x0.device) < self.config.label_dropout
            labels = torch.where(drop, self.num_classes, batch["label"])  # (B,)
        output = self.denoiser(x_t, t, labels).float()  # (B, C, H, W)
        target = to_target(x0, eps, self.alpha_bar[t].view(-1, 1, 1, 1), self.config.prediction)
        return {"total": F.mse_loss(output, target)}  # L_simple, Eq. 14

    # -- sampling

    def predict_eps(self, x_t: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        """The network's prediction at (x_t, t, y), as eps (B, C, H, W); labels None: the null class."""
        output = self.denoiser(x_t, t, labels).float()
        return to_x0_eps(output, x_t, self.alpha_bar[t].view(-1, 1, 1, 1), self.config.prediction)[1]

    def eps_denoiser(self, labels: Tensor | None = None, guidance: float = 1.0) -> Denoiser:
        """(x_t, t) -> eps for these labels, with classifier-free guidance when guidance != 1."""
        if labels is None or guidance == 1.0:
            return lambda x_t, t: self.predict_eps(x_t, t, labels)
        if guidance == 0.0:  # eps(x, null) + 0 * (...): the unconditional prediction alone, one pass
            return lambda x_t, t: self.predict_eps(x_t, t, torch.full_like(labels, self.num_classes))
        return guided(self.predict_eps, labels, torch.full_like(labels, self.num_classes), guidance)

    def check_labels(self, n: int, labels: Tensor | None) -> Tensor | None:
        if not self.num_classes:
            if labels is not None:
                raise GenzooError("this diffusion model is unconditional and takes no labels; drop them, or train with model.conditional=true.")
            return None
        return class_labels(labels, n, self.num_classes, self.device)

    def sampling_protocol(self, steps: int | None = None, sampler: str | None = None, eta: float | None = None,
                          guidance: float | None = None) -> dict:
        """How `generate` samples with these options (None: the config's), for the protocol of every score."""
        if guidance is not None and not self.num_classes:
            raise GenzooError("classifier-free guidance needs a class-conditional model and this one is unconditional; "
                              "drop --guidance, or train with model.conditional=true.")
        return diffusion_protocol(self.config, bool(self.num_classes), sampler, steps, eta, guidance)

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None,
                 steps: int | None = None, sampler: str | None = None, eta: float | None = None,
                 guidance: float | None = None, progress: bool = False) -> Tensor:
        """n images (n, C, H, W) in [-1, 1]; steps, sampler, eta and guidance default to the config's."""
        labels = self.check_labels(n, labels)
        if guidance is not None and not self.num_classes:
            raise GenzooError("classifier-free guidance needs a class-conditional model and this one is unconditional; "
                              "drop --guidance, or train with model.conditional=true.")
        sample = sampling_function(self.config, sampler, steps, eta)
        size = (n, self.info.channels, self.info.image_size, self.info.image_size)
        noise = torch.randn(size, device=self.device, generator=generator)  # x_T ~ N(0, I)
        denoiser = self.eps_denoiser(labels, self.config.guidance if guidance is None else guidance)
        return run_sampler(sample, denoiser, self.noise_schedule, noise, generator, progress)

"""StyleGAN (v1, AdaIN): a style-based generator trained the ProGAN way.

Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative Adversarial Networks"
(CVPR 2019). What it keeps from ProGAN (`genzoo.models.progan`, which this family extends): progressive
growing with fade-in, equalised learning rate, the discriminator with minibatch stddev. What it adds:

- Mapping network f: Z -> W (Sec. 2, Fig. 1 b): z normalised (pixel norm), then 8 fully connected
  layers with leaky ReLU; its learning rate is 0.01 x the generator's (Appendix C), here a parameter
  group with `lr_scale` 0.01 (under Adam the same as their weight multiplier).
- Synthesis network g: a learned constant 4 x 4 x C input (initialised to ones); per resolution two
  layers (the first after upsampling, a 3x3 convolution and a [1 2 1] blur), each adding per-pixel
  noise scaled by learned per-channel factors B (initialised to 0) and a bias, then leaky ReLU, then
      AdaIN(x_i, y) = y_s,i (x_i - mu(x_i)) / sigma(x_i) + y_b,i                     (Eq. 1)
  with the style y = (y_s, y_b) = A(w) a learned affine map of w (y_s's bias initialised to 1).
- Style mixing regularisation (Sec. 3.1): with probability 0.9 a second code z2 is mapped, and the
  layers from a random crossover point (among those the current level of detail uses) on take w2.
- Truncation in W (Sec. 3.2 and Appendix B): w' = w_avg + psi (w - w_avg), with w_avg the moving average
  (beta 0.995) of the mapped codes of the generator steps; `generate(psi=...)`, on every layer.
- Loss (Sec. 4 and Appendix C): the non-saturating loss with the R1 penalty gamma/2 E||grad D(x)||^2 on
  real images (Mescheder et al. 2018, Eq. 9), gamma = 10. R1 runs lazily, every 16 steps as a phase of
  its own weighted by 16, with the discriminator's Adam corrected by c = 16/17 (lr x c, betas ** c): the
  lazy regularisation of StyleGAN2 (Karras et al. 2020, Sec. 4 and Appendix B).

Not built: StyleGAN2's weight demodulation, path-length regulariser and skip/residual networks.
`decode_w` and the latent tools use each layer's fixed noise image (their code's `noise_mode='const'`),
so pictures and perceptual path lengths are deterministic; `generate` and training draw fresh noise.
"""

from __future__ import annotations

import torch
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt
from torch import Tensor, nn

from genzoo.errors import GenzooError
from genzoo.losses import Objective, r1_penalty
from genzoo.models.base import GroupSettings, Phase
from genzoo.models.progan import ProGAN, ProGANConfig
from genzoo.nn.progressive import EqualConv2d, EqualLinear, blur, fade_reals, lrelu, pixel_norm, resolutions, upsample, upscale_to
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class StyleGANConfig(ProGANConfig):
    objective: Objective = "non-saturating"  # with R1 (the paper's); ProGAN's wgan-gp also works
    latent_dim: PositiveInt = 512  # dimension of z and of w (the paper: 512)
    drift: NonNegativeFloat = 0.0  # ProGAN's drift term: off
    mapping_layers: PositiveInt = 8  # fully connected layers of f: Z -> W
    mapping_lr: PositiveFloat = 0.01  # the mapping network's learning rate, relative to the generator's
    style_mixing: float = Field(0.9, ge=0.0, le=1.0)  # probability of a second code per minibatch (Sec. 3.1)
    r1_gamma: NonNegativeFloat = 10.0  # gamma of the R1 penalty; 0: none
    r1_every: PositiveInt = 16  # lazy regularisation: R1 every k steps, weighted by k
    w_avg_beta: float = Field(0.995, ge=0.0, lt=1.0)  # decay of the tracked mean w (truncation centre)
    noise: bool = True  # per-pixel noise inputs
    blur: bool = True  # [1 2 1] blur after upsampling (G) and before downsampling (D)


# ----------------------------------------------------------------------------- networks


def adain(x: Tensor, scale: Tensor, shift: Tensor, eps: float = 1e-8) -> Tensor:
    """Eq. 1 (Huang & Belongie 2017): each feature map x_i normalised to zero mean and unit variance over its
    pixels, then scaled by y_s,i and shifted by y_b,i. x (B, C, H, W), scale and shift (B, C); in float32."""
    x32 = x.float()
    mean = x32.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1): mu(x_i)
    var = x32.var(dim=(2, 3), keepdim=True, unbiased=False)  # (B, C, 1, 1): sigma(x_i)^2
    normalised = (x32 - mean) * torch.rsqrt(var + eps)
    return (scale.float()[:, :, None, None] * normalised + shift.float()[:, :, None, None]).to(x.dtype)


class MappingNetwork(nn.Module):
    """f: z (B, D) -> w (B, D): pixel norm, then fully connected layers with leaky ReLU (Fig. 1 b)."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([EqualLinear(dim, dim) for _ in range(layers)])

    def forward(self, z: Tensor) -> Tensor:
        w = pixel_norm(z)  # (B, D)
        for layer in self.layers:
            w = lrelu(layer(w))
        return w


class StyleLayer(nn.Module):
    """One layer of g (Fig. 1 b): [upsample,] [conv 3x3, [blur,]] + B * noise, + bias, LReLU, AdaIN(x, A(w))."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, conv: bool = True,
                 up: bool = False, use_blur: bool = True, use_noise: bool = True) -> None:
        super().__init__()
        self.conv = EqualConv2d(in_channels, out_channels, 3, bias=False) if conv else None
        self.up, self.use_blur = up, use_blur
        self.noise_strength = nn.Parameter(torch.zeros(out_channels)) if use_noise else None  # B, per channel
        if use_noise:
            self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))  # for noise="const"
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.style = EqualLinear(w_dim, 2 * out_channels, gain=1.0)  # A: w -> (y_s, y_b)
        with torch.no_grad():
            self.style.bias[:out_channels] = 1.0  # y_s starts at 1: AdaIN starts as instance normalisation

    def forward(self, x: Tensor, w: Tensor, noise: str = "random", generator: torch.Generator | None = None) -> Tensor:
        """noise: "random" (fresh N(0, 1)), "const" (this layer's fixed noise image) or "none"."""
        if self.up:
            x = upsample(x)  # (B, C_in, 2H, 2W)
        if self.conv is not None:
            x = self.conv(x)  # (B, C_out, H, W)
            if self.up and self.use_blur:
                x = blur(x)
        if self.noise_strength is not None and noise != "none":
            if noise == "const":
                per_pixel = self.noise_const.to(x.dtype).expand(len(x), 1, *x.shape[2:])  # (B, 1, H, W)
            else:
                per_pixel = torch.randn(len(x), 1, *x.shape[2:], device=x.device, dtype=x.dtype, generator=generator)
            x = x + self.noise_strength.view(1, -1, 1, 1) * per_pixel  # one noise image, scaled per channel
        x = lrelu(x + self.bias.view(1, -1, 1, 1))
        scale, shift = self.style(w).chunk(2, dim=1)  # (B, C_out) each
        return adain(x, scale, shift)


class SynthesisNetwork(nn.Module):
    """g: per-layer styles ws (B, L, D) -> images (B, C, r, r) at resolution index `top`, faded in by alpha
    like ProGAN's generator (the to-RGB of the resolution before, upsampled, blended with the new one's)."""

    def __init__(self, w_dim: int, size: int, channels: int, widths, start: int, use_noise: bool,  # noqa: ANN001
                 use_blur: bool) -> None:
        super().__init__()
        self.sizes = resolutions(size)
        self.const = nn.Parameter(torch.ones(1, widths(4), 4, 4))  # the learned constant input
        layers = []
        options = {"use_blur": use_blur, "use_noise": use_noise}
        for r in self.sizes:
            if r == 4:  # the constant takes the first style directly, without a convolution
                layers.append(StyleLayer(widths(4), widths(4), w_dim, 4, conv=False, **options))
            else:
                layers.append(StyleLayer(widths(r // 2), widths(r), w_dim, r, up=True, **options))
            layers.append(StyleLayer(widths(r), widths(r), w_dim, r, **options))
        self.layers = nn.ModuleList(layers)
        self.to_rgb = nn.ModuleDict({str(r): EqualConv2d(widths(r), channels, 1, gain=1.0) for r in self.sizes if r >= start})

    @property
    def layer_resolutions(self) -> list[int]:
        """The resolution of each style layer: [4, 4, 8, 8, ...]."""
        return [r for r in self.sizes for _ in range(2)]

    def forward(self, ws: Tensor, top: int, alpha: float, noise: str = "random",
                generator: torch.Generator | None = None) -> Tensor:
        x = self.const.expand(len(ws), -1, -1, -1)  # (B, C_4, 4, 4)
        previous = x
        for index in range(top + 1):
            previous = x
            for j in (2 * index, 2 * index + 1):
                x = self.layers[j](x, ws[:, j], noise, generator)  # (B, C_r, r, r)
        images = self.to_rgb[str(self.sizes[top])](x)  # (B, C, r, r)
        if alpha < 1:  # Karras et al. 2018, Fig. 2 (b)
            images = torch.lerp(upsample(self.to_rgb[str(self.sizes[top - 1])](previous)), images, alpha)
        return images


class StyleGenerator(nn.Module):
    """The mapping and synthesis networks and the tracked mean w (a buffer: saved, and copied into the EMA)."""

    def __init__(self, config: StyleGANConfig, size: int, channels: int, widths) -> None:  # noqa: ANN001
        super().__init__()
        self.mapping = MappingNetwork(config.latent_dim, config.mapping_layers)
        self.synthesis = SynthesisNetwork(config.latent_dim, size, channels, widths, config.start_resolution,
                                          config.noise, config.blur)
        self.register_buffer("w_avg", torch.zeros(config.latent_dim))
        self.num_ws = len(self.synthesis.layers)


# ----------------------------------------------------------------------------- model


@MODELS.register("stylegan")
class StyleGAN(ProGAN):
    Config = StyleGANConfig
    phase_summary = "discriminator, r1 (lazy, every 16), generator; grows 4x4 -> full size"

    @property
    def blurred(self) -> bool:
        return self.config.blur

    def build_generator(self, widths) -> nn.Module:  # noqa: ANN001
        return StyleGenerator(self.config, self.size, self.info.channels, widths)

    # -- the trainer's interface

    @property
    def phases(self) -> tuple[Phase, ...]:
        r1 = (Phase("r1", group="discriminator", every=self.config.r1_every, fresh_batch=False),) if self.config.r1_gamma else ()
        return (Phase("discriminator", repeats=self.config.discriminator_steps), *r1, Phase("generator", fresh_batch=False))

    def param_groups(self) -> dict[str, list]:
        return {"discriminator": list(self.discriminator.parameters()),
                "generator": [{"params": list(self.generator.synthesis.parameters()), "lr_scale": 1.0},
                              {"params": list(self.generator.mapping.parameters()), "lr_scale": self.config.mapping_lr}]}

    def group_settings(self) -> dict[str, GroupSettings]:
        """Karras et al. 2020, Appendix B: a discriminator that also takes an R1 step every k steps makes
        k + 1 optimizer steps per k; its Adam is corrected by c = k / (k + 1): lr x c, betas ** c."""
        if not self.config.r1_gamma:
            return {}
        c = self.config.r1_every / (self.config.r1_every + 1)
        return {"discriminator": GroupSettings(lr_scale=c, betas_power=c)}

    # -- losses

    def r1_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """gamma / 2 * R1 on the real images (Mescheder et al. 2018, Eq. 9), weighted by k for running
        every k steps (lazy regularisation, Karras et al. 2020, Sec. 4)."""
        real = fade_reals(batch["image"], self.resolution, self.alpha)  # (B, C, r, r)
        penalty = r1_penalty(self.critic, real)
        return {"total": self.config.r1_gamma / 2 * penalty * self.config.r1_every, "r1_penalty": penalty}

    def fakes(self, n: int, generator_phase: bool = False) -> Tensor:
        """Training images (n, C, r, r) with fresh noise and style mixing (Sec. 3.1); the generator phase
        also moves the tracked mean w towards this batch's (their code: lerp(mean w, w_avg, 0.995))."""
        G, dim, layers = self.generator, self.config.latent_dim, self.generator.num_ws
        w = G.mapping(torch.randn(n, dim, device=self.device))  # (n, D)
        if generator_phase:
            with torch.no_grad():
                G.w_avg.lerp_(w.detach().float().mean(0), 1.0 - self.config.w_avg_beta)
        ws = w[:, None].expand(-1, layers, -1)  # (n, L, D)
        if self.config.style_mixing:  # one crossover per minibatch, drawn on the device (no host sync)
            w2 = G.mapping(torch.randn(n, dim, device=self.device))  # (n, D)
            active = 2 * (self.top + 1)  # the layers the current level of detail uses
            cutoff = torch.randint(1, active, (), device=self.device)
            mix = torch.rand((), device=self.device) < self.config.style_mixing
            cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, layers))
            first = (torch.arange(layers, device=self.device) < cutoff)[None, :, None]  # (1, L, 1)
            ws = torch.where(first, ws, w2[:, None])  # layers before the cutoff from w, the rest from w2
        return G.synthesis(ws, self.top, self.alpha, noise="random")

    # -- sampling and the latent tools

    @property
    def num_ws(self) -> int:
        """Style layers of the synthesis network (2 per resolution)."""
        return self.generator.num_ws

    @property
    def active_ws(self) -> int:
        """Style layers the current level of detail uses."""
        return 2 * (self.top + 1)

    @property
    def style_resolutions(self) -> list[int]:
        return self.generator.synthesis.layer_resolutions

    def map_latent(self, z: Tensor) -> Tensor:
        """w = f(z): (n, D) -> (n, D)."""
        return self.generator.mapping(z)

    def truncate(self, w: Tensor, psi: float | None) -> Tensor:
        """w' = w_avg + psi (w - w_avg) (Sec. 3.2); psi None or 1: w itself, 0: the mean w. w (..., D)."""
        if psi is None:
            return w
        if not psi >= 0:
            raise GenzooError(f"psi must be 0 or more (0: every sample is the mean image, 1: no truncation), got {psi}; "
                              "try 0.7.")
        return torch.lerp(self.generator.w_avg.to(w.dtype), w, float(psi))

    def decode_w(self, w: Tensor, noise: str = "const", generator: torch.Generator | None = None) -> Tensor:
        """g(w): one w per image (n, D) or one per style layer (n, L, D) -> (n, C, R, R), not clamped."""
        ws = w[:, None].expand(-1, self.num_ws, -1) if w.dim() == 2 else w  # (n, L, D)
        if ws.shape[1] != self.num_ws:
            raise GenzooError(f"{ws.shape[1]} styles given for the {self.num_ws} style layers of this network.")
        return upscale_to(self.generator.synthesis(ws, self.top, self.alpha, noise, generator), self.size)

    def decode_latent(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """g(f(z)) with each layer's fixed noise: (n, C, R, R), not clamped; differentiable."""
        self._no_labels(labels)
        return self.decode_w(self.map_latent(z))

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None,
                 psi: float | None = None, z: Tensor | None = None) -> Tensor:
        """(n, C, R, R) in [-1, 1] with fresh noise; `psi` truncates w towards the mean w."""
        self._no_labels(labels)
        z = self.sample_latent(n, generator) if z is None else z  # (n, D)
        w = self.truncate(self.map_latent(z), psi)  # (n, D)
        return self.decode_w(w, "random", generator).clamp(-1, 1)

    def sampling_protocol(self) -> dict:
        return {**super().sampling_protocol(), "psi": 1.0, "noise": "random"}

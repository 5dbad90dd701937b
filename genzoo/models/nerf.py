"""NeRF: a scene as a neural radiance field, seen through volume rendering along camera rays.

Mildenhall, Srinivasan, Tancik, Barron, Ramamoorthi & Ng, "NeRF: Representing Scenes as Neural
Radiance Fields for View Synthesis" (ECCV 2020). An MLP F(x, d) -> (c, sigma) gives the colour seen
from direction d and the density at point x; trained on posed images only (batches of rays from
`genzoo.data.rays`), it renders the scene from any new camera.
- Positional encoding, Eq. 4: gamma(p) = (sin(2^0 pi p), cos(2^0 pi p), ..., sin(2^(L-1) pi p),
  cos(2^(L-1) pi p)) per coordinate, L = 10 for x and 4 for d (Sec. 5.1), with p itself in front as
  the authors' code does; L = 0 feeds p alone (the "no positional encoding" ablation).
- The MLP (Fig. 7): 8 ReLU layers of 256 with gamma(x) concatenated again at the fifth; sigma (ReLU) from
  there; a 256-wide feature with gamma(d) appended -> 128 (ReLU) -> RGB (sigmoid). Without view
  dependence the colour head never sees d.
- Stratified sampling, Eq. 2: t_i ~ U[t_n + (i - 1)/N (t_f - t_n), t_n + i/N (t_f - t_n)], i = 1..N_c
  (the centres of the bins when rendering, as the authors' code does at test time).
- Volume rendering, Eq. 3: C^(r) = sum_i T_i (1 - exp(-sigma_i delta_i)) c_i, T_i = exp(-sum_{j<i} sigma_j delta_j),
  delta_i = t_(i+1) - t_i (the last one 1e10, as in the authors' code); whatever light is left,
  1 - sum_i w_i, shows the background (white, as they composite the Blender scenes).
- Hierarchical sampling, Eq. 5: w^_i = w_i / sum_j w_j of the coarse network is a piecewise-constant PDF
  along the ray; N_f more samples are drawn from it by inverse transform sampling and a second "fine"
  network is evaluated at all N_c + N_f samples.
- Loss, Eq. 6: sum over rays of ||C^_c(r) - C(r)||^2 + ||C^_f(r) - C(r)||^2 (here a mean over rays and channels);
  Adam with the rate decaying exponentially (Sec. 5.3: 5e-4 to 5e-5; by 0.1 every 250k steps in the authors' code).
The paper's ablations (Table 2) are settings: `position_frequencies: 0`, `view_dependent: false`,
`fine_samples: 0` (one network, no hierarchical sampling). `density: softplus` is the density of
Barron et al., "Mip-NeRF" (2021), softplus(raw - 1), whose gradient never vanishes: with a ReLU a small
network can switch its density off everywhere early on and never recover (an empty, white scene).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeInt, PositiveInt
from torch import Tensor, nn

from genzoo.config import FamilyConfig
from genzoo.data.cameras import orbit_poses, pixel_rays
from genzoo.errors import ConfigError
from genzoo.models.base import DataInfo, GenerativeModel, Picture, Scheduled
from genzoo.registry import MODELS

POINTS_PER_PASS = 1 << 18  # samples evaluated at once when rendering images (memory, not results)

# ----------------------------------------------------------------------------- config


class NeRFConfig(FamilyConfig):
    position_frequencies: NonNegativeInt = 10  # L of gamma(x), Sec. 5.1; 0: no positional encoding
    direction_frequencies: NonNegativeInt = 4  # L of gamma(d)
    view_dependent: bool = True  # the colour depends on the viewing direction d
    depth: PositiveInt = 8  # ReLU layers before sigma
    width: PositiveInt = 256
    skip: NonNegativeInt = 4  # gamma(x) is concatenated again after this many layers; 0: never
    samples: PositiveInt = 64  # N_c, stratified samples per ray
    fine_samples: NonNegativeInt = 128  # N_f, drawn from the coarse weights; 0: no hierarchical sampling
    perturb: bool = True  # stratified (random) sample positions in training; bin centres when rendering
    white_background: bool = True  # composite over white (Blender scenes), else over black
    density: Literal["relu", "softplus"] = "relu"  # sigma = ReLU(raw) (the paper) or softplus(raw - 1) (mip-NeRF)
    lr_decay: float = Field(0.1, gt=0.0, le=1.0)  # the rate falls exponentially by this factor every lr_decay_steps
    lr_decay_steps: PositiveInt = 250_000  # the authors' code: 5e-4 -> 5e-5 over 250k steps (and on beyond)


# ----------------------------------------------------------------------------- the math


def positional_encoding(p: Tensor, frequencies: int) -> Tensor:
    """Eq. 4, with p in front: (..., D) -> (..., D (1 + 2 L)) = [p, sin(2^0 pi p), cos(2^0 pi p), ...]."""
    parts = [p]
    for k in range(frequencies):
        parts += [torch.sin(2.0**k * math.pi * p), torch.cos(2.0**k * math.pi * p)]
    return torch.cat(parts, dim=-1)


def stratified_samples(near: float, far: float, rays: int, n: int, perturb: bool, device: torch.device) -> Tensor:
    """Eq. 2: one sample in each of n equal bins of [near, far], uniform in its bin (or at its centre): (rays, n)."""
    lower = torch.arange(n, device=device) / n  # (n,): each bin's start, as a fraction of [near, far]
    u = torch.rand(rays, n, device=device) if perturb else torch.full((rays, n), 0.5, device=device)
    return near + (far - near) * (lower + u / n)


def volume_rendering(sigma: Tensor, colour: Tensor, t: Tensor, background: float) -> dict[str, Tensor]:
    """Eq. 3 for densities sigma (R, N), colours (R, N, 3) at distances t (R, N) along unit rays: the
    colour (R, 3), the expected depth sum_i w_i t_i (R,), the opacity sum_i w_i (R,) and weights w (R, N)."""
    delta = torch.cat([t[:, 1:] - t[:, :-1], torch.full_like(t[:, :1], 1e10)], dim=1)  # (R, N)
    optical = sigma * delta  # sigma_i delta_i: (R, N)
    before = torch.cat([torch.zeros_like(optical[:, :1]), torch.cumsum(optical[:, :-1], dim=1)], dim=1)  # sum_{j<i}
    transmittance = torch.exp(-before)  # T_i = exp(-sum_{j<i} sigma_j delta_j); (a cumsum minus the last 1e10 term would round)
    weights = transmittance * (1 - torch.exp(-optical))  # w_i = T_i (1 - exp(-sigma_i delta_i)): (R, N)
    opacity = weights.sum(1)  # (R,)
    rgb = (weights[..., None] * colour).sum(1) + (1 - opacity)[:, None] * background  # (R, 3)
    return {"colour": rgb, "depth": (weights * t).sum(1), "opacity": opacity, "weights": weights}


def sample_pdf(edges: Tensor, weights: Tensor, n: int, perturb: bool) -> Tensor:
    """Eq. 5, inverse transform sampling: bins [edges_j, edges_(j+1)) (R, M + 1) with weights (R, M) form a
    piecewise-constant PDF; n samples (R, n) from it, for u ~ U[0, 1) (or u at the n quantile midpoints
    (k + 1/2)/n when not perturbed): find the bin where the CDF passes u, then interpolate linearly in it."""
    pdf = (weights + 1e-5) / (weights + 1e-5).sum(1, keepdim=True)  # (R, M); 1e-5 keeps empty rays finite
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, 1).clamp(max=1)], 1)  # (R, M + 1)
    if perturb:
        u = torch.rand(len(edges), n, device=edges.device)
    else:
        u = ((torch.arange(n, device=edges.device) + 0.5) / n).expand(len(edges), n)
    above = torch.searchsorted(cdf, u.contiguous(), right=True).clamp(1, cdf.shape[1] - 1)  # (R, n)
    below = above - 1
    cdf_below, cdf_above = cdf.gather(1, below), cdf.gather(1, above)
    edge_below, edge_above = edges.gather(1, below), edges.gather(1, above)
    span = torch.where(cdf_above - cdf_below < 1e-5, torch.ones_like(cdf_above), cdf_above - cdf_below)
    return edge_below + (u - cdf_below) / span * (edge_above - edge_below)


# ----------------------------------------------------------------------------- network


class RadianceField(nn.Module):
    """F(gamma(x), gamma(d)) -> (sigma, c), Fig. 7 at any depth and width."""

    def __init__(self, config: NeRFConfig) -> None:
        super().__init__()
        self.position_frequencies, self.direction_frequencies = config.position_frequencies, config.direction_frequencies
        self.view_dependent, self.skip, self.softplus = config.view_dependent, config.skip, config.density == "softplus"
        position_dim, direction_dim = 3 * (1 + 2 * config.position_frequencies), 3 * (1 + 2 * config.direction_frequencies)
        sizes = [position_dim] + [config.width + (position_dim if 0 < self.skip == i else 0) for i in range(1, config.depth)]
        self.layers = nn.ModuleList(nn.Linear(size, config.width) for size in sizes)
        self.density = nn.Linear(config.width, 1)
        self.feature = nn.Linear(config.width, config.width)
        self.colour = nn.Sequential(nn.Linear(config.width + (direction_dim if self.view_dependent else 0), config.width // 2),
                                    nn.ReLU(), nn.Linear(config.width // 2, 3))

    def forward(self, x: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        """Points x (..., 3) seen along unit directions d (..., 3) -> sigma (...,) and colour (..., 3) in [0, 1]."""
        encoded = positional_encoding(x, self.position_frequencies)  # (..., Dx)
        h = encoded
        for i, layer in enumerate(self.layers):
            if 0 < self.skip == i:
                h = torch.cat([encoded, h], dim=-1)  # the skip connection of Fig. 7
            h = F.relu(layer(h))
        raw = self.density(h).squeeze(-1)  # (...,)
        sigma = F.softplus(raw - 1) if self.softplus else F.relu(raw)  # a ReLU density can die everywhere; softplus cannot
        feature = self.feature(h)
        if self.view_dependent:
            feature = torch.cat([feature, positional_encoding(d, self.direction_frequencies)], dim=-1)
        return sigma, torch.sigmoid(self.colour(feature))  # (...,), (..., 3)


# ----------------------------------------------------------------------------- model


@MODELS.register("nerf")
class NeRF(GenerativeModel):
    Config = NeRFConfig
    phase_summary = "main (coarse + fine rays)"
    ema_modules = ("coarse", "fine")
    requires = ("origin", "direction", "colour")

    def __init__(self, config: NeRFConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if None in (info.focal, info.near, info.far, info.camera_distance, info.image_size):
            raise ConfigError("nerf learns a scene from posed views; use data.name=chair-views, or posed-images with a "
                              "transforms.json folder.")
        self.coarse = RadianceField(config)
        self.fine = RadianceField(config) if config.fine_samples else None
        self.background = 1.0 if config.white_background else 0.0

    def schedule(self, step: int, total: int) -> Scheduled:
        """Sec. 5.3: the learning rate decays exponentially, by `lr_decay` every `lr_decay_steps` steps (a
        function of the step alone: a run extended with `genzoo resume --steps` continues the same curve)."""
        return Scheduled(lr={"main": self.config.lr_decay ** (step / self.config.lr_decay_steps)})

    def render_rays(self, origins: Tensor, directions: Tensor, perturb: bool = False) -> dict[str, Tensor]:
        """Colours of rays (R, 3) from the fine network (the coarse one without hierarchical sampling),
        `colour_coarse` (R, 3), and the expected depth and opacity (R,) of the last pass."""
        near, far, config = self.info.near, self.info.far, self.config
        t = stratified_samples(near, far, len(origins), config.samples, perturb, origins.device)  # (R, N_c)
        coarse = self._pass(self.coarse, origins, directions, t)
        if self.fine is None:
            return {**coarse, "colour_coarse": coarse["colour"]}
        middles = 0.5 * (t[:, 1:] + t[:, :-1])  # (R, N_c - 1): edges of the bins between the coarse samples
        t_fine = sample_pdf(middles, coarse["weights"][:, 1:-1].detach(), config.fine_samples, perturb)  # (R, N_f)
        t_all = torch.sort(torch.cat([t, t_fine.detach()], dim=1), dim=1).values  # (R, N_c + N_f)
        return {**self._pass(self.fine, origins, directions, t_all), "colour_coarse": coarse["colour"]}

    def _pass(self, field: RadianceField, origins: Tensor, directions: Tensor, t: Tensor) -> dict[str, Tensor]:
        points = origins[:, None] + t[..., None] * directions[:, None]  # r(t) = o + t d: (R, N, 3)
        sigma, colour = field(points, directions[:, None].expand_as(points))  # (R, N), (R, N, 3)
        return volume_rendering(sigma, colour, t, self.background)

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        out = self.render_rays(batch["origin"], batch["direction"], perturb=self.training and self.config.perturb)
        target = batch["colour"]  # (B, 3) in [0, 1]
        mse_coarse = (out["colour_coarse"] - target).pow(2).mean()
        if self.fine is None:
            return {"total": mse_coarse, "mse_coarse": mse_coarse}
        mse_fine = (out["colour"] - target).pow(2).mean()
        return {"total": mse_coarse + mse_fine, "mse_coarse": mse_coarse, "mse_fine": mse_fine}  # Eq. 6

    # -- rendering images

    @torch.no_grad()
    def render_poses(self, poses: Tensor, size: int | None = None) -> Tensor:
        """Images (n, 3, s, s) in [0, 1] seen from camera-to-world poses (n, 4, 4) (`genzoo.data.cameras`),
        at the training image size or `size` (the focal length scaled with it)."""
        size = size or self.info.image_size
        origins, directions = pixel_rays(poses.to(self.device), size, size, self.info.focal * size / self.info.image_size)
        origins, directions = origins.reshape(-1, 3), directions.reshape(-1, 3)  # (n s s, 3)
        per_ray = self.config.samples + self.config.fine_samples
        chunk = max(1, POINTS_PER_PASS // per_ray)
        colours = [self.render_rays(origins[i : i + chunk], directions[i : i + chunk])["colour"]
                   for i in range(0, len(origins), chunk)]
        return torch.cat(colours).reshape(len(poses), size, size, 3).permute(0, 3, 1, 2).clamp(0, 1)

    @torch.no_grad()
    def render(self, azimuth: Tensor, elevation: Tensor, size: int | None = None) -> Tensor:
        """The scene from orbit cameras at the training cameras' distance, looking at the scene's centre:
        (B, 3, s, s) in [-1, 1]."""
        poses = orbit_poses(torch.as_tensor(azimuth).float(), torch.as_tensor(elevation).float(), self.info.camera_distance)
        return self.render_poses(poses, size) * 2 - 1

    @torch.no_grad()
    def preview(self, batch: dict[str, Tensor], n: int, seed: int = 0) -> Tensor:
        """Novel views: up to 4 cameras around the orbit at 30 degrees elevation."""
        k = min(n, 4)
        return self.render(torch.arange(k) * (2 * math.pi / k), torch.full((k,), math.radians(30)))

    @torch.no_grad()
    def pictures(self, data: object = None, generator: torch.Generator | None = None) -> list[Picture]:
        """For the report: an orbit of novel views (under the true renders when the data can render them),
        and training views beside the model's renders from the same cameras."""
        azimuth, elevation = torch.arange(8) * (math.pi / 4), torch.full((8,), math.radians(30))
        orbit = self.render(azimuth, elevation)
        truth = getattr(data, "truth", None)
        if callable(truth):
            poses = orbit_poses(azimuth, elevation, self.info.camera_distance)
            orbit = torch.cat([truth(poses).to(self.device) * 2 - 1, orbit])
        pictures = [Picture("orbit", "novel views around the orbit" + (" (top: true renders)" if callable(truth) else ""),
                            orbit, 8)]
        if hasattr(data, "poses") and hasattr(data, "images"):
            k = min(4, len(data.images))
            rendered = self.render_poses(data.poses[:k])
            pairs = torch.stack([data.images[:k].to(self.device), rendered], 1).flatten(0, 1) * 2 - 1
            pictures.append(Picture("training-views", "training views beside the model's renders from their cameras", pairs, 8))
        return pictures

"""Perceptual path length (PPL): how much the images change along short steps in a latent space.

Karras, Laine & Aila, "A Style-Based Generator Architecture for GANs" (CVPR 2019), Sec. 4.1:

    l_Z = E[ 1/eps^2 d(G(slerp(z1, z2; t)), G(slerp(z1, z2; t + eps))) ],  z1, z2 ~ P(z), t ~ U(0, 1)   (Eq. 2)
    l_W = E[ 1/eps^2 d(g(lerp(f(z1), f(z2); t)), g(lerp(f(z1), f(z2); t + eps))) ]                     (Eq. 3)

with eps = 1e-4 ("full" paths: t anywhere in [0, 1]); their code averages only the values between the
1st and the 99th percentile. Lower is smoother: a disentangled space changes the image evenly.

d is a perceptual distance. The paper uses LPIPS (Zhang et al. 2018) on VGG-16, whose weights cannot
be had offline, so genzoo computes it the LPIPS way on the chosen feature network (`fmnist` by default)
without LPIPS's learned per-channel weights (their Eq. 1 with w_l = 1):

    d(x, y) = sum_l 1/(H_l W_l) sum_hw || phi_l(x)_hw / |phi_l(x)_hw| - phi_l(y)_hw / |phi_l(y)_hw| ||^2

over the network's ReLU activations phi_l (each vector over the channels unit-normalised). Scores are
named `ppl-z-<network>` and `ppl-w-<network>` and are comparable only with each other. The faces are
not cropped (the paper crops to the central face region). slerp interpolates the codes' norms too
(`genzoo.latent.slerp`), since a DCGAN generator, unlike ProGAN's and StyleGAN's, does not normalise z.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from genzoo.errors import GenzooError
from genzoo.latent import STYLE_SPACE, latent_space
from genzoo.metrics.context import EvalContext, Score
from genzoo.metrics.features import FeatureNetwork
from genzoo.registry import METRICS

EPSILON = 1e-4  # the paper's step
KEPT = (0.01, 0.99)  # percentiles between which values are averaged (their code)
DISTANCE = ("LPIPS-style without learned weights: unit-normalised ReLU activations of the feature network, squared L2 "
            "over channels, mean over pixels, summed over layers")


def normalised_distance(features_a: list[Tensor], features_b: list[Tensor], eps: float = 1e-10) -> Tensor:
    """Zhang et al. 2018, Eq. 1 with unit weights: per layer, each activation vector (dim 1) divided by its
    length (+ eps, as LPIPS), the squared difference summed over channels and averaged over pixels; summed
    over layers. Lists of (B, C, H, W) or (B, C) tensors -> (B,)."""
    total = None
    for a, b in zip(features_a, features_b):
        a = a.float() / (a.float().norm(dim=1, keepdim=True) + eps)
        b = b.float() / (b.float().norm(dim=1, keepdim=True) + eps)
        per_pixel = (a - b).pow(2).sum(1)  # (B, H, W) or (B,)
        layer = per_pixel.flatten(1).mean(1) if per_pixel.dim() > 1 else per_pixel  # (B,)
        total = layer if total is None else total + layer
    if total is None:
        raise GenzooError("the feature network has no ReLU activations to measure a perceptual distance with.")
    return total


def trimmed_mean(values: Tensor, kept: tuple[float, float] = KEPT) -> float:
    """The mean of the values between the `kept` percentiles, inclusive (numpy's 'lower' and 'higher'
    percentiles, as the paper's code takes them)."""
    ordered = values.double().sort().values
    last = len(ordered) - 1
    low, high = ordered[math.floor(kept[0] * last)], ordered[math.ceil(kept[1] * last)]
    return ordered[(ordered >= low) & (ordered <= high)].mean().item()


def _slerp_rows(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """`genzoo.latent.slerp` with one t per row: a, b (B, D), t (B, 1) -> (B, D)."""
    cos = (a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))  # (B, 1)
    sin = torch.sin(omega)
    straight = sin.abs() < 1e-6  # (anti)parallel codes: the great circle is undefined
    safe = torch.where(straight, torch.ones_like(sin), sin)
    return torch.where(straight, (1 - t) * a + t * b,
                       (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / safe)


def _lerp_rows(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """(1 - t) a + t b with one t per row: a, b (B, D), t (B, 1) -> (B, D)."""
    return (1 - t) * a + t * b


@torch.no_grad()
def path_lengths(model: Any, network: FeatureNetwork, n: int, space: str = "z", epsilon: float = EPSILON,
                 batch_size: int = 250, generator: torch.Generator | None = None,
                 device: str | torch.device = "cpu") -> Tensor:
    """n values of d(x_t, x_{t + eps}) / eps^2 (Eqs. 2-3), float64 (n,): slerp in z, lerp in w."""
    entry = latent_space(model, space)
    was_training = model.training
    model.eval()
    values = []
    try:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            first, second = entry.sample(model, count, generator), entry.sample(model, count, generator)  # (b, D)
            t = torch.rand(count, 1, device=first.device, generator=generator)  # (b, 1)
            path = _slerp_rows if space == "z" else _lerp_rows
            codes = torch.cat([path(first, second, t), path(first, second, t + epsilon)])  # (2b, D)
            images = entry.decode(model, codes, None).float().to(device)  # (2b, C, H, W)
            features = network.activations(images)  # per layer (2b, ...)
            distance = normalised_distance([f[:count] for f in features], [f[count:] for f in features])  # (b,)
            values.append(distance.double().cpu() / epsilon**2)
    finally:
        model.train(was_training)
    return torch.cat(values)


@METRICS.register("ppl")
def perceptual_path_length(ctx: EvalContext) -> list[Score]:
    """Perceptual path length in z (slerp) and, for StyleGAN, in w (lerp) (Karras et al. 2019, Eqs. 2-3)."""
    model = ctx.model
    try:
        latent_space(model)
    except GenzooError:
        raise GenzooError(f"PPL walks a latent space, and a {type(model).__name__} model has none; drop ppl from "
                          "--metrics.") from None
    spaces = ["z"] + (["w"] if STYLE_SPACE.applies(model) else [])
    scores = []
    for space in spaces:
        generator = torch.Generator(device=model.device).manual_seed(ctx.seed)
        values = path_lengths(model, ctx.network, ctx.num_fake, space, EPSILON, min(ctx.batch_size, 250), generator,
                              ctx.device)
        name = f"ppl-{space}-{ctx.network.name}"
        protocol = {"metric": name, **ctx.protocol, "space": space, "path": "slerp" if space == "z" else "lerp",
                    "epsilon": EPSILON, "sampling": "full: t ~ U(0, 1)", "pairs": ctx.num_fake, "distance": DISTANCE,
                    "kept": "values between the 1st and 99th percentiles", "crop": "none",
                    "noise": "each layer's fixed noise image" if STYLE_SPACE.applies(model) else None}
        scores.append(Score(name, trimmed_mean(values), None, protocol))
    return scores

"""Loss terms that families share: adversarial objective pairs, the gradient penalty, the Gaussian KL.

Adversarial objectives are (discriminator loss, generator loss) pairs over the discriminator's raw
output l = D(x). For the log-loss objectives D(x) = sigma(l), and with log sigma(l) = -softplus(-l)
and log(1 - sigma(l)) = -softplus(l) the losses are exact and numerically stable; the least-squares,
Wasserstein and hinge objectives use l itself (no sigmoid). Each objective also names what its
paper trains it with: a gradient penalty weight, a weight clipping bound, critic steps per
generator step, and optimizer settings, which the GAN presets follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import AfterValidator
from torch import Tensor, nn

from genzoo.registry import ADVERSARIAL_LOSSES


@dataclass(frozen=True)
class AdversarialLoss:
    discriminator: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]  # (real, fake outputs) -> (loss_d_real, loss_d_fake)
    generator: Callable[[Tensor], Tensor]  # fake outputs -> loss_g
    probability: bool = True  # D(x) = sigma(l) is a probability (log-loss objectives); else a raw score
    gradient_penalty: float = 0.0  # lambda of the paper's gradient penalty; 0: none
    weight_clip: float | None = None  # c: critic weights clipped to [-c, c] after each step
    paper: dict = field(default_factory=dict)  # training settings of the paper, for presets and docs


def _discriminator_log_loss(real_logits: Tensor, fake_logits: Tensor) -> tuple[Tensor, Tensor]:
    # Goodfellow et al. (2014), Eq. 1: D maximises log D(x) + log(1 - D(G(z))).
    loss_d_real = F.softplus(-real_logits).mean()  # -log D(x)
    loss_d_fake = F.softplus(fake_logits).mean()  # -log(1 - D(G(z)))
    return loss_d_real, loss_d_fake


def _generator_minimax(fake_logits: Tensor) -> Tensor:
    # Goodfellow et al. (2014), Eq. 1: G minimises log(1 - D(G(z))); saturates when D wins.
    return -F.softplus(fake_logits).mean()  # log(1 - D(G(z)))


def _generator_non_saturating(fake_logits: Tensor) -> Tensor:
    # Goodfellow et al. (2014), Sec. 3: G maximises log D(G(z)) instead, for strong early gradients.
    return F.softplus(-fake_logits).mean()  # -log D(G(z))


def _discriminator_least_squares(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    # Mao et al. (2017), Eq. 2 with a = 0 (fake), b = 1 (real): 1/2 E(D(x) - 1)^2 + 1/2 E D(G(z))^2.
    return 0.5 * (real - 1).pow(2).mean(), 0.5 * fake.pow(2).mean()


def _generator_least_squares(fake: Tensor) -> Tensor:
    # Mao et al. (2017), Eq. 2 with c = 1: G minimises 1/2 E(D(G(z)) - 1)^2.
    return 0.5 * (fake - 1).pow(2).mean()


def _critic_wasserstein(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    # Arjovsky et al. (2017), Algorithm 1: the critic maximises E D(x) - E D(G(z)).
    return -real.mean(), fake.mean()


def _generator_wasserstein(fake: Tensor) -> Tensor:
    # Arjovsky et al. (2017), Algorithm 1: G minimises -E D(G(z)); also the hinge GAN's generator.
    return -fake.mean()


def _discriminator_hinge(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    # Lim & Ye (2017); Miyato et al. (2018), Eq. 16: E max(0, 1 - D(x)) + E max(0, 1 + D(G(z))).
    return F.relu(1 - real).mean(), F.relu(1 + fake).mean()


def known_objective(name: str) -> str:
    """A config validator: `name` must be a registered adversarial objective."""
    if name not in ADVERSARIAL_LOSSES:
        raise ValueError(f"unknown objective; choose one of {', '.join(ADVERSARIAL_LOSSES.names())}")
    return name


Objective = Annotated[str, AfterValidator(known_objective)]  # a config field naming a registered objective

ADVERSARIAL_LOSSES.register("minimax")(AdversarialLoss(_discriminator_log_loss, _generator_minimax))
ADVERSARIAL_LOSSES.register("non-saturating")(AdversarialLoss(_discriminator_log_loss, _generator_non_saturating))
ADVERSARIAL_LOSSES.register("lsgan")(AdversarialLoss(
    _discriminator_least_squares, _generator_least_squares, probability=False,
    paper={"optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}))
ADVERSARIAL_LOSSES.register("wgan")(AdversarialLoss(
    _critic_wasserstein, _generator_wasserstein, probability=False, weight_clip=0.01,
    paper={"optimizer": "rmsprop", "lr": 5e-5, "critic_steps": 5}))
ADVERSARIAL_LOSSES.register("wgan-gp")(AdversarialLoss(
    _critic_wasserstein, _generator_wasserstein, probability=False, gradient_penalty=10.0,
    paper={"optimizer": "adam", "lr": 1e-4, "betas": (0.0, 0.9), "critic_steps": 5}))
ADVERSARIAL_LOSSES.register("hinge")(AdversarialLoss(
    _discriminator_hinge, _generator_wasserstein, probability=False,
    paper={"optimizer": "adam", "lr": 2e-4, "betas": (0.0, 0.9)}))


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """Gulrajani et al. (2017), Eq. 3: E[(||grad_x^ D(x^)||_2 - 1)^2] on x^ = eps x + (1 - eps) x~,
    eps ~ U[0, 1] per sample. Computed in float32 even under autocast (a second-order term that
    bf16 rounds badly). real, fake: (B, C, H, W) -> scalar."""
    with torch.autocast(real.device.type, enabled=False):
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, generator=generator)  # (B, 1, 1, 1)
        interpolates = (eps * real.float() + (1 - eps) * fake.float()).requires_grad_(True)  # (B, C, H, W)
        scores = critic(interpolates).float()  # (B, 1)
        (gradients,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)  # (B, C, H, W)
        return (gradients.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def r1_penalty(discriminator: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """Mescheder et al. (2018), Eq. 9: R1 = E_x ||grad_x D(x)||^2 on real images (the caller weighs it by
    gamma / 2). In float32 even under autocast, like the gradient penalty. real: (B, C, H, W) -> scalar."""
    with torch.autocast(real.device.type, enabled=False):
        real = real.detach().float().requires_grad_(True)  # (B, C, H, W)
        scores = discriminator(real).float()  # (B, 1)
        (gradients,) = torch.autograd.grad(scores.sum(), real, create_graph=True)  # (B, C, H, W)
        return gradients.flatten(1).pow(2).sum(1).mean()


@torch.no_grad()
def clip_weights(module: nn.Module, bound: float) -> None:
    """Arjovsky et al. (2017), Algorithm 1: w <- clip(w, -c, c) for every critic parameter."""
    for parameter in module.parameters():
        parameter.clamp_(-bound, bound)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per sample, summed over latent dimensions.

    Kingma & Welling (2014), Appendix B: -KL = 1/2 sum(1 + log sigma^2 - mu^2 - sigma^2), i.e.
    KL = 1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2). mu, logvar: (B, D) -> (B,).
    """
    return 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar, dim=1)


# ----------------------------------------------------------------------------- image distances
# Per-image distances between a reconstruction x_hat and its target x, both (B, C, H, W) in [-1, 1],
# each returning (B,). The autoencoder, GLO and swap families train on a weighted sum of them.

def laplacian_pyramid(x: Tensor, levels: int = 4) -> list[Tensor]:
    """Burt & Adelson (1983): band-pass levels L^0 (finest) .. L^{J-2} and the low-pass residual L^{J-1}.

    L^j = G^j - up(G^{j+1}), G^0 = x, G^{j+1} = down(blur(G^j)) with the 5-tap binomial kernel
    [1, 4, 6, 4, 1] / 16 (reflect padding, so a constant image has zero band-pass levels), and `up`
    bilinear. Levels stop early when an image gets smaller than 4 pixels. x: (B, C, H, W).
    """
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=x.device, dtype=x.dtype) / 16
    kernel = (taps[:, None] * taps[None, :]).expand(x.shape[1], 1, 5, 5)  # (C, 1, 5, 5), depthwise
    pyramid, current = [], x
    for _ in range(levels - 1):
        if min(current.shape[-2:]) < 4:
            break
        blurred = F.conv2d(F.pad(current, (2, 2, 2, 2), mode="reflect"), kernel, groups=x.shape[1])  # (B, C, h, w)
        low = blurred[..., ::2, ::2]  # (B, C, ceil(h/2), ceil(w/2))
        pyramid.append(current - F.interpolate(low, size=current.shape[-2:], mode="bilinear", align_corners=False))
        current = low
    return pyramid + [current]


def laplacian_l1(x_hat: Tensor, x: Tensor, levels: int = 4) -> Tensor:
    """Bojanowski et al., "Optimizing the Latent Space of Generative Networks" (2018), Sec. 3.3:
    Lap1(x, x') = sum_j 2^(-2j) |L^j(x) - L^j(x')|_1, here with |.|_1 averaged over each level's
    pixels (j = 0 the finest level), so that a coarse level counts less than the fine detail. (B,)."""
    pairs = zip(laplacian_pyramid(x_hat, levels), laplacian_pyramid(x, levels))
    return sum(4.0**-j * (a - b).abs().flatten(1).mean(1) for j, (a, b) in enumerate(pairs))


class PerceptualDistance:
    """Johnson et al., "Perceptual Losses for Real-Time Style Transfer and Super-Resolution" (2016),
    Eq. 2: sum over layers l of 1/(C_l H_l W_l) ||phi_l(x_hat) - phi_l(x)||_2^2, with phi_l the ReLU
    activations of a frozen feature network from the FEATURES registry (default `fmnist`, genzoo's
    Fashion-MNIST classifier; `inception` works where its weights are available). The network is not
    part of the model's weights: it is loaded from the registry by name when the model is built."""

    def __init__(self, network_name: str) -> None:
        from genzoo.metrics.features import load_features

        self.features = load_features(network_name)
        for parameter in self.features.network.parameters():
            parameter.requires_grad_(False)

    def __call__(self, x_hat: Tensor, x: Tensor) -> Tensor:
        if next(self.features.network.parameters()).device != x.device:
            self.features.to(x.device)
        both = self.features.activations(torch.cat([x_hat, x]))  # per layer: (2B, ...)
        return sum((a - b).pow(2).flatten(1).mean(1) for a, b in (layer.chunk(2) for layer in both))  # (B,)


IMAGE_DISTANCES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mse": lambda x_hat, x: (x_hat - x).pow(2).flatten(1).mean(1),  # mean squared error per pixel
    "mae": lambda x_hat, x: (x_hat - x).abs().flatten(1).mean(1),  # mean absolute error per pixel
    "laplacian": laplacian_l1,
}


class ImageLoss:
    """A weighted sum of image distances, e.g. {"mse": 1.0, "perceptual": 0.1}; per image (B,)."""

    def __init__(self, weights: dict[str, float], perceptual_network: str = "fmnist") -> None:
        self.weights = {name: weight for name, weight in weights.items() if weight}
        self.terms = {name: IMAGE_DISTANCES[name] for name in self.weights if name != "perceptual"}
        if "perceptual" in self.weights:
            self.terms["perceptual"] = PerceptualDistance(perceptual_network)

    def __call__(self, x_hat: Tensor, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(total (B,), {name: (B,)}) for reconstructions x_hat of x, both (B, C, H, W)."""
        parts = {name: term(x_hat, x) for name, term in self.terms.items()}
        return sum(self.weights[name] * value for name, value in parts.items()), parts


# ----------------------------------------------------------------------------- style transfer
# Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks" (CVPR 2016), Sec. 2.
# A layer l with N_l channels and M_l = H_l * W_l positions gives features F^l (N_l x M_l).

def gram_matrix(features: Tensor) -> Tensor:
    """G^l / M_l with G^l_ij = sum_k F^l_ik F^l_jk (Gatys et al., Eq. 3), i.e. divided by the number of
    positions so that images of other sizes compare. features (B, N, H, W) -> (B, N, N)."""
    flat = features.flatten(2)  # (B, N, M)
    return flat @ flat.transpose(1, 2) / flat.shape[-1]  # (B, N, N)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Gatys et al., Eq. 1: L_content = 1/2 sum_ij (F^l_ij - P^l_ij)^2, summed over the batch. Both (B, N, H, W)."""
    return 0.5 * (features - target).pow(2).sum()


def style_layer_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    """Gatys et al., Eq. 4: E_l = 1/(4 N_l^2 M_l^2) sum_ij (G^l_ij - A^l_ij)^2 with unnormalised Grams; with
    both divided by M_l (`gram_matrix`) it is 1/4 of the mean over the N_l^2 entries. features (B, N, H, W),
    target_gram (B or 1, N, N) -> scalar (summed over the batch)."""
    return 0.25 * (gram_matrix(features) - target_gram).pow(2).mean(dim=(1, 2)).sum()


def style_loss(features: list[Tensor], target_grams: list[Tensor], weights: list[float]) -> Tensor:
    """Gatys et al., Eq. 5: L_style = sum_l w_l E_l, the layer weights w_l summing to 1."""
    return sum(w * style_layer_loss(f, g) for f, g, w in zip(features, target_grams, weights))


def total_variation(x: Tensor) -> Tensor:
    """Squared total variation (Mahendran & Vedaldi 2015, Eq. 2 with beta = 2; the smoothness term of
    Johnson et al. 2016): sum of squared differences between vertical and horizontal neighbours,
    summed over the batch. x (B, C, H, W) -> scalar."""
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).sum() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).sum()

"""Loss terms that families share: adversarial objective pairs and the Gaussian KL.

Adversarial objectives are (discriminator loss, generator loss) pairs over the discriminator's
logits l = D(x) before any sigmoid, so D(x) = sigma(l). With log sigma(l) = -softplus(-l) and
log(1 - sigma(l)) = -softplus(l), the losses below are exact and numerically stable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.registry import ADVERSARIAL_LOSSES


@dataclass(frozen=True)
class AdversarialLoss:
    discriminator: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]  # (real, fake logits) -> (loss_d_real, loss_d_fake)
    generator: Callable[[Tensor], Tensor]  # fake logits -> loss_g


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


ADVERSARIAL_LOSSES.register("minimax")(AdversarialLoss(_discriminator_log_loss, _generator_minimax))
ADVERSARIAL_LOSSES.register("non-saturating")(AdversarialLoss(_discriminator_log_loss, _generator_non_saturating))


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per sample, summed over latent dimensions.

    Kingma & Welling (2014), Appendix B: -KL = 1/2 sum(1 + log sigma^2 - mu^2 - sigma^2), i.e.
    KL = 1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2). mu, logvar: (B, D) -> (B,).
    """
    return 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar, dim=1)


RECONSTRUCTION_ERRORS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mse": lambda x_hat, x: (x_hat - x).pow(2).flatten(1).sum(1),  # sum of squared errors per image
    "mae": lambda x_hat, x: (x_hat - x).abs().flatten(1).sum(1),  # sum of absolute errors per image
}


def reconstruction_error(kind: str, x_hat: Tensor, x: Tensor) -> Tensor:
    """Per-image reconstruction error summed over pixels: (B, C, H, W) x 2 -> (B,)."""
    return RECONSTRUCTION_ERRORS[kind](x_hat, x)

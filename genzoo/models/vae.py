"""VAE: a Gaussian encoder q(z|x), a decoder p(x|z) and a N(0, I) prior; beta-VAE; conditional VAE.

Kingma & Welling, "Auto-Encoding Variational Bayes" (2014). The encoder gives mu and log sigma^2;
z = mu + sigma * eps with eps ~ N(0, I) (the reparameterisation trick, Sec. 2.4). The loss is the
negative ELBO (Eq. 3, with the closed-form KL of Appendix B) with a weight beta on the KL term:
    L = -log p(x|z) + beta * 1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2)
beta = 1 is the VAE; beta > 1 the beta-VAE of Higgins et al., "beta-VAE: Learning Basic Visual
Concepts with a Constrained Variational Framework" (2017), Eq. 4.
Decoder likelihoods p(x|z), with x in [-1, 1]:
- `gaussian`: N(x_hat, 1/2 I), so -log p(x|z) = sum (x - x_hat)^2 + D/2 log(pi), D = C * H * W;
- `bernoulli`: the decoder gives logits l, and -log p(x|z) = sum BCE(sigmoid(l), (x + 1) / 2)
  (Kingma & Welling's MNIST decoder, Appendix C.1; for grey pixels a cross-entropy, not a normalised
  density, so its ELBO is reported in nats only and bits/dim are not given).
Conditional VAE (Sohn, Lee & Yan, "Learning Structured Output Representation using Deep Conditional
Generative Models", 2015): the label y goes to the encoder q(z|x, y) (as one-hot planes beside the
image channels) and to the decoder p(x|z, y) (one-hot beside z); the prior stays N(0, I).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import NonNegativeFloat, PositiveInt
from torch import Tensor

from genzoo.config import FamilyConfig
from genzoo.errors import ConfigError, GenzooError
from genzoo.losses import gaussian_kl
from genzoo.models.base import DataInfo, GenerativeModel, Likelihood, class_labels
from genzoo.nn import DownConvStack, UpConvStack, init_dcgan_weights
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class VAEConfig(FamilyConfig):
    latent_dim: PositiveInt = 32  # size of z
    width: PositiveInt = 32  # base channel count of encoder and decoder
    beta: NonNegativeFloat = 1.0  # weight of the KL term; 1 is the VAE, > 1 the beta-VAE
    likelihood: Literal["gaussian", "bernoulli"] = "gaussian"  # the decoder's p(x|z)
    conditional: bool = False  # labels to encoder and decoder (needs a labelled dataset)


# ----------------------------------------------------------------------------- likelihoods

def gaussian_nll(decoded: Tensor, x: Tensor) -> Tensor:
    """-log N(x; x_hat, 1/2 I) = sum (x - x_hat)^2 + D/2 log(pi) per image: (B, C, H, W) x 2 -> (B,)."""
    return (decoded - x).pow(2).flatten(1).sum(1) + 0.5 * x[0].numel() * math.log(math.pi)


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    """-log Bernoulli((x + 1) / 2; sigmoid(logits)) summed over pixels: (B, C, H, W) x 2 -> (B,)."""
    target = (x + 1) / 2  # [-1, 1] -> [0, 1]
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)


LIKELIHOODS = {  # name -> (-log p(x|z) per image, decoder output -> image in [-1, 1], decoder ends in tanh)
    "gaussian": (gaussian_nll, lambda decoded: decoded, True),
    "bernoulli": (bernoulli_nll, lambda logits: torch.sigmoid(logits) * 2 - 1, False),
}


# ----------------------------------------------------------------------------- model


@MODELS.register("vae")
class VAE(GenerativeModel):
    Config = VAEConfig
    ema_modules = ("encoder", "decoder")
    latent_prior = "standard normal"  # traversals of single dimensions from -3 to 3 are meaningful

    def __init__(self, config: VAEConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.conditional = config.conditional
        self.num_classes = info.num_classes if config.conditional else 0
        if config.conditional and not info.num_classes:
            raise ConfigError("a conditional VAE needs a labelled dataset (e.g. fashion-mnist); choose one or set model.conditional=false.")
        self.requires = ("image", "label") if self.conditional else ("image",)
        self.negative_log_likelihood, self.to_image, tanh = LIKELIHOODS[config.likelihood]
        # nll is the negative ELBO, an upper bound; bits per 8-bit value need the dequantisation offset
        # log 128 (256 bins of width 2/256 on [-1, 1], Theis et al. 2016, Sec. 3.1), and exist only where
        # p(x|z) is a density of the pixel values (not for the Bernoulli decoder on grey levels)
        self.likelihood = Likelihood(exact=False, item="image", dims=info.channels * info.image_size**2,
                                     offset=math.log(128.0) if config.likelihood == "gaussian" else None)
        self.encoder = DownConvStack(info.image_size, info.channels + self.num_classes, config.width, out_dim=2 * config.latent_dim)
        self.decoder = UpConvStack(config.latent_dim + self.num_classes, info.image_size, info.channels, config.width, tanh=tanh)
        init_dcgan_weights(self)

    def _one_hot(self, labels: Tensor | None, n: int) -> Tensor:
        if not self.conditional:
            return torch.empty(n, 0, device=self.device)
        if labels is None:
            raise GenzooError("this VAE is conditional: give class labels with the images; use a labelled dataset.")
        return F.one_hot(labels, self.num_classes).float()  # (B, K)

    def posterior(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """q(z|x[, y]): mu and log sigma^2, (B, D) each."""
        y = self._one_hot(labels, len(x))[:, :, None, None].expand(-1, -1, *x.shape[-2:])  # (B, K, H, W)
        mu, logvar = self.encoder(torch.cat([x, y.to(x.dtype)], dim=1)).chunk(2, dim=1)  # (B, D), (B, D)
        return mu, logvar

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """The decoder's raw output (images, or logits for a Bernoulli decoder) for z (B, D)."""
        return self.decoder(torch.cat([z, self._one_hot(labels, len(z)).to(z.dtype)], dim=1))  # (B, C, H, W)

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x, labels = batch["image"], batch.get("label")  # (B, C, H, W) in [-1, 1], (B,)
        mu, logvar = self.posterior(x, labels)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # reparameterisation: (B, D)
        reconstruction = self.negative_log_likelihood(self.decode(z, labels).float(), x.float())  # (B,)
        kl = gaussian_kl(mu.float(), logvar.float())  # (B,)
        return {
            "total": (reconstruction + self.config.beta * kl).mean(),
            "reconstruction": reconstruction.mean(),
            "kl": kl.mean(),
        }

    @torch.no_grad()
    def nll(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """The negative ELBO per image in nats (beta = 1 whatever the training beta): an upper bound on
        -log p(x[|y]), one posterior sample drawn with `generator`. (B,)."""
        x, labels = batch["image"], batch.get("label")  # (B, C, H, W)
        mu, logvar = self.posterior(x, labels)
        eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)  # (B, D)
        z = mu + torch.exp(0.5 * logvar) * eps  # (B, D)
        return self.negative_log_likelihood(self.decode(z, labels), x) + gaussian_kl(mu, logvar)  # (B,)

    @torch.no_grad()
    def encode(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.conditional and labels is None:
            raise GenzooError("this VAE is conditional: encode needs the images' labels too.")
        return self.posterior(x, labels)[0]  # the posterior mean, (B, D)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.conditional and labels is None:
            raise GenzooError("this VAE is conditional: reconstruct needs the images' labels too.")
        return self.to_image(self.decode(self.encode(x, labels), labels))  # (B, C, H, W)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.config.latent_dim, device=self.device, generator=generator)  # z ~ N(0, I): (n, D)

    def decode_latent(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images in [-1, 1] for codes z (B, D) (and labels, for a conditional VAE: every class in turn if None);
        differentiable (encoding by optimisation uses it)."""
        if labels is not None and not self.conditional:
            raise GenzooError("this VAE is unconditional and decodes codes without labels; drop the labels.")
        if self.conditional:
            labels = class_labels(labels, len(z), self.num_classes, z.device)
        return self.to_image(self.decode(z, labels))  # (B, C, H, W)

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        if labels is not None and not self.conditional:
            raise GenzooError("this VAE is unconditional and takes no labels; drop them.")
        return self.decode_latent(self.sample_latent(n, generator), labels)  # (n, C, H, W)

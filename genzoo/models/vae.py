"""VAE: a Gaussian encoder q(z|x), a decoder p(x|z) and a N(0, I) prior.

Kingma & Welling, "Auto-Encoding Variational Bayes" (2014). The encoder gives mu and log sigma^2;
z = mu + sigma * eps with eps ~ N(0, I) (the reparameterisation trick, Sec. 2.4). The loss is the
negative ELBO with a weight beta on the KL term (beta = 1 is the VAE; Higgins et al. 2017 for
beta != 1):
    L = reconstruction(x, decoder(z)) + beta * 1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2)
with the reconstruction error summed over pixels (squared: a Gaussian decoder of fixed variance).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import NonNegativeFloat, PositiveInt
from torch import Tensor

from genzoo.config import FamilyConfig
from genzoo.errors import GenzooError
from genzoo.losses import gaussian_kl, reconstruction_error
from genzoo.models.base import DataInfo, GenerativeModel
from genzoo.nn import DownConvStack, UpConvStack, init_dcgan_weights
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class VAEConfig(FamilyConfig):
    latent_dim: PositiveInt = 32  # size of z
    width: PositiveInt = 32  # base channel count of encoder and decoder
    beta: NonNegativeFloat = 1.0  # weight of the KL term; 1 is the plain VAE
    reconstruction: Literal["mse", "mae"] = "mse"  # summed over pixels


# ----------------------------------------------------------------------------- model


@MODELS.register("vae")
class VAE(GenerativeModel):
    Config = VAEConfig
    ema_modules = ("encoder", "decoder")

    def __init__(self, config: VAEConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.encoder = DownConvStack(info.image_size, info.channels, config.width, out_dim=2 * config.latent_dim)
        self.decoder = UpConvStack(config.latent_dim, info.image_size, info.channels, config.width)
        init_dcgan_weights(self)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (B, D), (B, D)
        return mu, logvar

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["image"]  # (B, C, H, W) in [-1, 1]
        mu, logvar = self.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # reparameterisation: (B, D)
        reconstruction = reconstruction_error(self.config.reconstruction, self.decoder(z), x)  # (B,)
        kl = gaussian_kl(mu, logvar)  # (B,)
        return {
            "total": (reconstruction + self.config.beta * kl).mean(),
            "reconstruction": reconstruction.mean(),
            "kl": kl.mean(),
        }

    @torch.no_grad()
    def nll(self, batch: dict[str, Tensor]) -> Tensor:
        """Negative ELBO per image in nats, an upper bound on -log p(x), one posterior sample.

        With `mse` the decoder is the Gaussian N(x_hat, 1/2 I) that the summed squared error implies:
        -log p(x|z) = sum (x - x_hat)^2 + D/2 log(pi), D = C * H * W. Only defined for `mse` with beta = 1.
        """
        if self.config.reconstruction != "mse":
            raise GenzooError("the ELBO is defined here for reconstruction=mse only (a Gaussian decoder); drop the elbo metric.")
        x = batch["image"]  # (B, C, H, W)
        mu, logvar = self.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # (B, D)
        dims = x[0].numel()
        neg_log_likelihood = reconstruction_error("mse", self.decoder(z), x) + 0.5 * dims * math.log(math.pi)  # (B,)
        return neg_log_likelihood + gaussian_kl(mu, logvar)  # (B,)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]  # the posterior mean, (B, D)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decoder(self.encode(x))  # (B, C, H, W)

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        if labels is not None:
            raise GenzooError("this VAE is unconditional and takes no labels; drop them.")
        z = torch.randn(n, self.config.latent_dim, device=self.device, generator=generator)  # z ~ N(0, I)
        return self.decoder(z)  # (n, C, H, W)

"""Autoencoder: an encoder to a small code and a decoder back, trained to reconstruct.

Hinton & Salakhutdinov, "Reducing the Dimensionality of Data with Neural Networks" (2006), with
convolutional DCGAN-style stacks. The loss is a per-pixel mean squared (`mse`) or absolute (`mae`)
error, the Laplacian-pyramid L1 of Bojanowski et al. (2018) (`laplacian`), a perceptual distance
between feature-network activations (Johnson et al. 2016; `perceptual`), or a weighted sum such as
`loss: {mse: 1.0, perceptual: 0.1}` (see `genzoo.losses`). It reconstructs and encodes; it does not
generate: nothing makes random codes land where the decoder was trained (that is what the VAE adds).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import NonNegativeFloat, PositiveInt, field_validator
from torch import Tensor

from genzoo.config import FamilyConfig
from genzoo.losses import ImageLoss
from genzoo.models.base import DataInfo, GenerativeModel
from genzoo.nn import DownConvStack, UpConvStack, init_dcgan_weights
from genzoo.registry import FEATURES, MODELS

# ----------------------------------------------------------------------------- config

ImageDistance = Literal["mse", "mae", "laplacian", "perceptual"]


class ReconstructionConfig(FamilyConfig):
    """The reconstruction loss that the autoencoder and the swap autoencoder share."""

    loss: ImageDistance | dict[ImageDistance, NonNegativeFloat] = "mse"  # one distance, or {name: weight}
    perceptual_network: str = "fmnist"  # feature network (`genzoo list`) of the perceptual distance

    @field_validator("perceptual_network")
    @classmethod
    def _known_network(cls, name: str) -> str:
        FEATURES.get(name)  # an unknown name fails here, listing the known ones
        return name

    @property
    def loss_weights(self) -> dict[str, float]:
        return {self.loss: 1.0} if isinstance(self.loss, str) else dict(self.loss)


class AutoencoderConfig(ReconstructionConfig):
    latent_dim: PositiveInt = 32  # size of the code
    width: PositiveInt = 32  # base channel count of encoder and decoder


# ----------------------------------------------------------------------------- model


@MODELS.register("autoencoder")
class Autoencoder(GenerativeModel):
    Config = AutoencoderConfig
    ema_modules = ("encoder", "decoder")

    def __init__(self, config: AutoencoderConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.encoder = DownConvStack(info.image_size, info.channels, config.width, out_dim=config.latent_dim)
        self.decoder = UpConvStack(config.latent_dim, info.image_size, info.channels, config.width)
        init_dcgan_weights(self)
        self.loss = ImageLoss(config.loss_weights, config.perceptual_network)

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["image"]  # (B, C, H, W) in [-1, 1]
        x_hat = self.decoder(self.encoder(x))  # (B, C, H, W)
        total, parts = self.loss(x_hat, x)  # (B,), {name: (B,)}
        return {"total": total.mean(), **({name: v.mean() for name, v in parts.items()} if len(parts) > 1 else {})}

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, D)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))  # (B, C, H, W)

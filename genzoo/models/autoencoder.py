"""Autoencoder: an encoder to a small code and a decoder back, trained to reconstruct.

Hinton & Salakhutdinov, "Reducing the Dimensionality of Data with Neural Networks" (2006), with
convolutional DCGAN-style stacks. The loss is the mean squared (`mse`) or absolute (`mae`) error
per pixel. It reconstructs and encodes; it does not generate: nothing makes random codes land where
the decoder was trained (that is what the VAE adds).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import PositiveInt
from torch import Tensor

from genzoo.config import FamilyConfig
from genzoo.losses import reconstruction_error
from genzoo.models.base import DataInfo, GenerativeModel
from genzoo.nn import DownConvStack, UpConvStack, init_dcgan_weights
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class AutoencoderConfig(FamilyConfig):
    latent_dim: PositiveInt = 32  # size of the code
    width: PositiveInt = 32  # base channel count of encoder and decoder
    loss: Literal["mse", "mae"] = "mse"  # reconstruction error, averaged per pixel


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

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["image"]  # (B, C, H, W) in [-1, 1]
        x_hat = self.decoder(self.encoder(x))  # (B, C, H, W)
        per_pixel = reconstruction_error(self.config.loss, x_hat, x) / x[0].numel()  # (B,)
        return {"total": per_pixel.mean()}

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, D)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))  # (B, C, H, W)

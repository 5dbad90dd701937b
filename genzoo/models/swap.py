"""Swap autoencoder: one shared encoder, one decoder per domain, the "DeepFake" face-swap model.

The autoencoder behind the original face-swap tools (the 2017 "deepfakes" code; described e.g. in
Perov et al., "DeepFaceLab: Integrated, flexible and extensible face-swapping framework", 2020,
Sec. 3.1): a shared encoder E and two decoders D_a, D_b, each trained only to reconstruct its own
domain,
    L = loss(D_a(E(x_a)), x_a) + loss(D_b(E(x_b)), x_b),
so E must describe both domains in one code (pose, expression, lighting) while each decoder learns
its domain's appearance. Decoding a's code with b's decoder, D_b(E(x_a)), is the swap: `translate(x,
to="b")`. Training data: two domains, `data.domains=[A, B]` (two classes of a labelled dataset, or
two class sub-folders of an image folder). Left out: the random warping augmentation of the face-swap
tools (it helps with real faces of a few hundred images).
"""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat, PositiveInt
from torch import Tensor, nn

from genzoo.losses import ImageLoss
from genzoo.models.autoencoder import ImageDistance, ReconstructionConfig
from genzoo.models.base import DataInfo, GenerativeModel
from genzoo.nn import DownConvStack, UpConvStack, init_dcgan_weights
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class SwapConfig(ReconstructionConfig):
    latent_dim: PositiveInt = 64  # size of the shared code
    width: PositiveInt = 32  # base channel count of encoder and decoders
    loss: ImageDistance | dict[ImageDistance, NonNegativeFloat] = "mae"  # per domain; L1 as the face-swap tools


# ----------------------------------------------------------------------------- model


@MODELS.register("swap")
class SwapAutoencoder(GenerativeModel):
    Config = SwapConfig
    requires = ("a", "b")
    ema_modules = ("encoder", "decoder_a", "decoder_b")

    def __init__(self, config: SwapConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.encoder = DownConvStack(info.image_size, info.channels, config.width, out_dim=config.latent_dim)
        self.decoder_a = UpConvStack(config.latent_dim, info.image_size, info.channels, config.width)
        self.decoder_b = UpConvStack(config.latent_dim, info.image_size, info.channels, config.width)
        init_dcgan_weights(self)
        self.loss = ImageLoss(config.loss_weights, config.perceptual_network)

    def decoder(self, domain: str | int) -> nn.Module:
        """The decoder of domain a or b (also by the data's name of the domain, or 0 / 1)."""
        return (self.decoder_a, self.decoder_b)[self.domain_index(domain)]

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        a, b = batch["a"], batch["b"]  # (B, C, H, W) each, in [-1, 1], unpaired
        loss_a, _ = self.loss(self.decoder_a(self.encoder(a)), a)  # (B,)
        loss_b, _ = self.loss(self.decoder_b(self.encoder(b)), b)  # (B,)
        return {"total": loss_a.mean() + loss_b.mean(), "a": loss_a.mean(), "b": loss_b.mean()}

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, D), the code both decoders read

    @torch.no_grad()
    def reconstruct(self, x: Tensor, domain: str | int = "a") -> Tensor:
        """x of `domain` through its own decoder: (B, C, H, W) -> (B, C, H, W)."""
        return self.decoder(domain)(self.encoder(x))

    @torch.no_grad()
    def translate(self, x: Tensor, to: str | int = "b") -> Tensor:
        """The swap: images of the other domain encoded, then decoded by `to`'s decoder, D_to(E(x))."""
        return self.decoder(to)(self.encoder(x))  # (B, C, H, W)

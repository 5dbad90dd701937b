"""DCGAN-style convolution stacks, shared by the GAN, the autoencoder and the VAE.

Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional GANs"
(2016), Sec. 3, architecture guidelines:
- strided convolutions instead of pooling (discriminator / encoder), fractionally strided
  convolutions (generator / decoder);
- batchnorm in both, except the generator output and the discriminator input layer;
- no fully connected hidden layers;
- ReLU in the generator with Tanh on the output, LeakyReLU (slope 0.2) in the discriminator.

Sizes: an image of side s = b * 2^k with 4 <= b <= 7 (28 = 7 * 4, 32 = 4 * 8, 64 = 4 * 16) is
reached from a b x b map by k stride-2 layers, so the same code serves 28, 32 and 64 px.
"""

from __future__ import annotations

from torch import Tensor, nn

from genzoo.errors import ConfigError


def base_and_doublings(image_size: int) -> tuple[int, int]:
    """(b, k) with image_size = b * 2^k and 4 <= b <= 7; k >= 1."""
    base, doublings = image_size, 0
    while base % 2 == 0 and base // 2 >= 4:
        base, doublings = base // 2, doublings + 1
    if doublings == 0 or base > 7:
        raise ConfigError(
            f"image size {image_size} is not b * 2^k with 4 <= b <= 7 (e.g. 28, 32, 64); "
            "set data.image_size to such a size."
        )
    return base, doublings


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN Sec. 4: weights from N(0, 0.02); batchnorm scale from N(1, 0.02), shift 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


class UpConvStack(nn.Module):
    """z (B, D) -> image (B, C, s, s) in [-1, 1]: the DCGAN generator, also used as a decoder
    (`tanh=False`: raw outputs, e.g. the logits of a Bernoulli decoder)."""

    def __init__(self, latent_dim: int, image_size: int, channels: int, width: int, tanh: bool = True) -> None:
        super().__init__()
        base, doublings = base_and_doublings(image_size)
        features = width * 2 ** (doublings - 1)
        layers: list[nn.Module] = [  # project z to a b x b map: a "fractionally strided" conv of kernel b
            nn.ConvTranspose2d(latent_dim, features, base, 1, 0, bias=False),
            nn.BatchNorm2d(features),
            nn.ReLU(True),
        ]
        for _ in range(doublings - 1):
            layers += [
                nn.ConvTranspose2d(features, features // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(features // 2),
                nn.ReLU(True),
            ]
            features //= 2
        layers += [nn.ConvTranspose2d(features, channels, 4, 2, 1, bias=not tanh), nn.Tanh() if tanh else nn.Identity()]
        self.net = nn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])  # (B, D, 1, 1) -> (B, C, s, s)


NORMS = {
    "batch": nn.BatchNorm2d,
    "layer": lambda channels: nn.GroupNorm(1, channels),  # per-sample over (C, H, W), as WGAN-GP's critic
    "none": lambda channels: nn.Identity(),
}


class DownConvStack(nn.Module):
    """image (B, C, s, s) -> (B, out_dim): the DCGAN discriminator, also used as an encoder.

    With out_dim=None it stops before the last layer and returns the flattened b x b feature map,
    (B, feature_dim), for heads that a model adds itself (a score, a class projection, a classifier).
    """

    def __init__(self, image_size: int, channels: int, width: int, out_dim: int | None, norm: str = "batch") -> None:
        super().__init__()
        base, doublings = base_and_doublings(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        features = width
        for _ in range(doublings - 1):
            layers += [
                nn.Conv2d(features, features * 2, 4, 2, 1, bias=norm != "batch"),  # batchnorm has its own shift
                NORMS[norm](features * 2),
                nn.LeakyReLU(0.2, True),
            ]
            features *= 2
        if out_dim is not None:
            layers.append(nn.Conv2d(features, out_dim, base, 1, 0))  # b x b -> 1 x 1, no hidden FC layer
        self.net = nn.Sequential(*layers)
        self.feature_dim = out_dim if out_dim is not None else features * base * base

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten(1)  # (B, out_dim, 1, 1) or (B, F, b, b) -> (B, feature_dim)

"""Fully connected GAN networks for the 2-D toy data (`genzoo.data.toy`).

As in the mode-collapse experiments of Metz et al., "Unrolled GANs" (2017), appendix A, and
Srivastava et al., "VEEGAN" (2017), Sec. 5.1: small ReLU MLPs (hidden layers of 128 units).
Points travel through genzoo as 1 x 1 "images" with one channel per coordinate, (B, D, 1, 1),
so the trainer, the sample grids and `generate` need nothing special. The generator ends in Tanh
so that its output is in [-1, 1] like every genzoo image; the toy modes lie within [-0.8, 0.8].
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from genzoo.errors import ConfigError

NORMS = ("none", "layer", "batch")


def _hidden(in_dim: int, width: int, depth: int, activation: Callable[[], nn.Module],
            norm: str = "none") -> list[nn.Module]:
    if norm not in NORMS:
        raise ConfigError(f"unknown discriminator norm {norm!r}; choose one of: {', '.join(NORMS)}.")
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(in_dim if i == 0 else width, width))
        if norm == "layer":
            layers.append(nn.LayerNorm(width))
        elif norm == "batch":
            layers.append(nn.BatchNorm1d(width))
        layers.append(activation())
    return layers


class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> points (B, out_dim, 1, 1) in [-1, 1]: `depth` ReLU layers of `width`.

    `out_shape` (C, H, W), if given, replaces out_dim: the output is then (B, C, H, W), an MLP
    image generator (Goodfellow et al. 2014 used one on MNIST)."""

    def __init__(self, latent_dim: int, out_dim: int = 2, width: int = 128, depth: int = 3,
                 out_shape: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape) if out_shape is not None else (out_dim, 1, 1)
        self.latent_dim, self.out_dim = latent_dim, self.out_shape[0] * self.out_shape[1] * self.out_shape[2]
        self.net = nn.Sequential(*_hidden(latent_dim, width, depth, nn.ReLU), nn.Linear(width, self.out_dim), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.out_shape)  # (B, out_dim) -> (B, C, H, W), (B, out_dim, 1, 1) by default


class MLPDiscriminatorBody(nn.Module):
    """points (B, in_dim, 1, 1) -> features (B, width): `depth` LeakyReLU(0.2) layers of `width`.

    `norm` ("none", "layer", "batch") after each linear layer, for the GAN's discriminator_norm."""

    def __init__(self, in_dim: int = 2, width: int = 128, depth: int = 3, norm: str = "none") -> None:
        super().__init__()
        self.net = nn.Sequential(*_hidden(in_dim, width, depth, lambda: nn.LeakyReLU(0.2), norm))
        self.feature_dim = width

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))  # (B, in_dim, 1, 1) -> (B, width)

"""GLO: Generative Latent Optimization, a generator trained with one learned code per image and no encoder.

Bojanowski, Joulin, Lopez-Paz & Szlam, "Optimizing the Latent Space of Generative Networks" (ICML 2018).
Each training image x_i gets its own code z_i, a free parameter; codes and generator g are learned
jointly (Eq. 1 / Sec. 3):
    min_{theta, z_1..z_N} 1/N sum_i loss(g_theta(z_i), x_i),   with every z_i projected to the unit
    l2 sphere after each step (Sec. 3.2, "we project the latent vectors onto the unit sphere"),
and the loss is the L1 + Laplacian-pyramid loss of Sec. 3.3 (`genzoo.losses.laplacian_l1`; any
weighted sum of genzoo's image distances can be set with `loss`). There is no encoder: a new image
is encoded by optimising a code with the generator frozen (`encode`, a small `optimize` loop of its
own, with a progress bar). New images come from a full-covariance Gaussian fitted to the learned
codes (Sec. 4.3), projected to the sphere the generator was trained on.

Deviations, stated: codes start as random unit vectors (the paper initialises them with PCA of the
images); codes and generator share the trainer's optimizer and learning rate (the paper uses SGD
with its own rate for the codes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt
from torch import Tensor, nn

from genzoo.errors import ConfigError, GenzooError
from genzoo.latent import optimise_codes
from genzoo.losses import ImageLoss
from genzoo.models.autoencoder import ImageDistance, ReconstructionConfig
from genzoo.models.base import DataInfo, GenerativeModel
from genzoo.nn import UpConvStack, init_dcgan_weights
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class GLOConfig(ReconstructionConfig):
    latent_dim: PositiveInt = 32  # size of each image's code z_i
    width: PositiveInt = 32  # base channel count of the generator
    loss: ImageDistance | dict[ImageDistance, NonNegativeFloat] = {"mae": 1.0, "laplacian": 1.0}  # L1 + Lap1 (Sec. 3.3)
    encode_steps: PositiveInt = 300  # optimisation steps to encode a new image
    encode_lr: PositiveFloat = 0.05  # Adam learning rate of those steps
    encode_restarts: PositiveInt = 4  # random starting codes per image; the best one is kept


def to_sphere(z: Tensor) -> Tensor:
    """Project codes (N, D) onto the unit l2 sphere (Sec. 3.2)."""
    return F.normalize(z, dim=-1, eps=1e-12)


# ----------------------------------------------------------------------------- model


@MODELS.register("glo")
class GLO(GenerativeModel):
    Config = GLOConfig
    requires = ("image", "index")  # the dataset's stable index i of each image picks its code z_i
    ema_modules = ("generator", "codes")

    def __init__(self, config: GLOConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if not info.num_images:
            raise ConfigError("GLO learns one code per training image and needs a dataset of stored images; "
                              "choose one such as fashion-mnist or an image folder.")
        self.generator = UpConvStack(config.latent_dim, info.image_size, info.channels, config.width)
        init_dcgan_weights(self)
        self.codes = nn.Embedding(info.num_images, config.latent_dim)  # z_i for i = 0 .. N-1: (N, D)
        with torch.no_grad():
            self.codes.weight.copy_(to_sphere(torch.randn(info.num_images, config.latent_dim)))
        self.loss = ImageLoss(config.loss_weights, config.perceptual_network)

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x, index = batch["image"], batch["index"]  # (B, C, H, W) in [-1, 1], (B,)
        z = self.codes(index)  # (B, D), on the unit sphere
        total, parts = self.loss(self.generator(z), x)  # (B,), {name: (B,)}
        return {"total": total.mean(), **({name: v.mean() for name, v in parts.items()} if len(parts) > 1 else {})}

    @torch.no_grad()
    def after_step(self, phase: str) -> None:
        self.codes.weight.copy_(to_sphere(self.codes.weight))  # z_i <- z_i / ||z_i||

    # -- sampling: a Gaussian fitted to the learned codes (Sec. 4.3)

    def code_distribution(self) -> tuple[Tensor, Tensor]:
        """Mean (D,) and the Cholesky factor (D, D) of the full-covariance Gaussian fitted to the codes."""
        codes = self.codes.weight.detach().double()  # (N, D)
        mean = codes.mean(0)  # (D,)
        centred = codes - mean  # (N, D)
        covariance = centred.T @ centred / max(len(codes) - 1, 1)  # (D, D)
        covariance += 1e-6 * torch.eye(len(mean), dtype=covariance.dtype, device=covariance.device)
        return mean, torch.linalg.cholesky(covariance)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        mean, factor = self.code_distribution()
        eps = torch.randn(n, len(mean), device=self.device, generator=generator).double()  # (n, D)
        return to_sphere(mean + eps @ factor.T).float()  # (n, D)

    def decode_latent(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images (B, C, H, W) for codes z (B, D); differentiable (encoding by optimisation uses it)."""
        if labels is not None:
            raise GenzooError("a GLO model is unconditional and takes no labels; drop them.")
        return self.generator(z)  # (B, C, H, W)

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        return self.decode_latent(self.sample_latent(n, generator), labels)  # (n, C, H, W)

    # -- encoding a new image: optimise its code with the generator frozen

    def project_latent(self, z: Tensor) -> Tensor:
        """Codes back onto the unit sphere the generator was trained on (Sec. 3.2)."""
        return to_sphere(z)

    def encode(self, x: Tensor, steps: int | None = None, lr: float | None = None, progress: bool = False,
               seed: int = 0) -> Tensor:
        """argmin_z loss(g(z), x) over unit codes z, by Adam from `encode_restarts` random unit codes per
        image (`genzoo.latent.optimise_codes`): (B, C, H, W) -> (B, D)."""
        restarts = self.config.encode_restarts
        start = torch.randn(restarts, len(x), self.config.latent_dim, device=x.device,
                            generator=torch.Generator(device=x.device).manual_seed(seed))  # (R, B, D)
        frozen = [(p, p.requires_grad) for p in self.generator.parameters()]
        try:
            for p, _ in frozen:
                p.requires_grad_(False)
            codes, _, _ = optimise_codes(self.generator, x, to_sphere(start), lambda images, targets: self.loss(images, targets)[0],
                                         steps or self.config.encode_steps, lr or self.config.encode_lr, to_sphere, progress)
        finally:
            for p, required in frozen:
                p.requires_grad_(required)
        return codes  # (B, D)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, progress: bool = False) -> Tensor:
        return self.generator(self.encode(x, progress=progress))  # (B, C, H, W)

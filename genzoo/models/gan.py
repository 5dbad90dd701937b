"""GAN: a generator against a discriminator, with a table of objectives and class conditioning.

Goodfellow et al., "Generative Adversarial Nets" (2014): D and G play the minimax game
    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]            (Eq. 1)
trained by alternating k steps of D with one step of G (Algorithm 1). Each later objective answers a
failure of the last, and lives in `genzoo.losses` as a registered (D loss, G loss) pair: `minimax`,
`non-saturating` (Sec. 3, the default), `lsgan` (Mao et al. 2017), `wgan` with weight clipping
(Arjovsky et al. 2017), `wgan-gp` with a gradient penalty (Gulrajani et al. 2017) and `hinge`
(Lim & Ye 2017; Miyato et al. 2018). Settings left at None take the objective's paper values.

Networks: DCGAN (Radford et al. 2016, `genzoo.nn.dcgan`), a ResNet with optional spectral norm
(Miyato et al. 2018, `genzoo.nn.resnet`), or an MLP for 2-D toys (`genzoo.nn.mlp`). The
discriminator is a body phi(x) -> (B, F) with heads added here:
- unconditional: D(x) = w^T phi(x) + b. For DCGAN, phi(x) is the flattened b x b map of the last
  strided convolution (F = C b^2), and this linear head is the paper's last layer, a b x b convolution
  to one channel without padding (4 x 4 at 64 px, 7 x 7 at 28 px): the same function and parameters,
  w = conv.weight.flatten() (a test checks it). Keeping it linear lets the projection and AC-GAN heads
  share phi(x), and keeps the checkpoint layout of every earlier run. Its weights are drawn from
  N(0, 0.02), with every other layer's (DCGAN Sec. 4);
- `cgan`: labels feed G (one-hot, concatenated to z; Mirza & Osindero 2014) and a projection
  discriminator D(x, y) = w^T phi(x) + b + embed(y)^T phi(x) (Miyato & Koyama 2018, Eq. 3);
- `acgan`: labels feed G; D also classifies, and both add the class log-likelihood of the true
  label to their objectives (Odena et al. 2017, Eqs. 2-3).

Regularisers that work with any objective:
- R1 (Mescheder et al., "Which Training Methods for GANs do actually Converge?", 2018, Eq. 9):
  gamma/2 E_x ||grad_x D(x)||^2 on real images, as its own phase every `r1_every` steps ("lazy
  regularisation", Karras et al. 2020, Sec. 3.1) weighted by the interval, with their Appendix B
  correction of the discriminator's Adam: learning rate x c and betas^c, c = k / (k + 1);
- instance noise (Sonderby et al., "Amortised MAP Inference for Image Super-resolution", 2017,
  Sec. 3.2; Arjovsky & Bottou 2017): N(0, sigma^2) noise on every input of D, real and fake, with
  sigma annealed linearly from `instance_noise` to 0 over the run (a schedule of the step).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt
from torch import Tensor, nn

from genzoo.config import FamilyConfig
from genzoo.errors import GenzooError
from genzoo.losses import ADVERSARIAL_LOSSES, Objective, clip_weights, gradient_penalty, r1_penalty
from genzoo.models.base import DataInfo, GenerativeModel, GroupSettings, Phase, Scheduled, class_labels
from genzoo.nn import DownConvStack, UpConvStack, init_dcgan_weights
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class GANConfig(FamilyConfig):
    objective: Objective = "non-saturating"  # minimax, non-saturating, lsgan, wgan, wgan-gp, hinge
    architecture: Literal["dcgan", "resnet", "mlp"] = "dcgan"
    latent_dim: PositiveInt = 100  # z ~ N(0, I) of this size (DCGAN uses 100)
    generator_width: PositiveInt = 64  # channels of the last hidden generator layer (ngf)
    discriminator_width: PositiveInt = 64  # channels of the first discriminator layer (ndf)
    discriminator_norm: Literal["batch", "layer", "none"] | None = None  # None: batch, or none for wgan-gp / SN
    spectral_norm: bool = False  # spectral normalisation of every discriminator layer (Miyato et al. 2018)
    discriminator_steps: PositiveInt | None = None  # k of Algorithm 1; None: the objective's (5 for WGAN), else 1
    gradient_penalty: NonNegativeFloat | None = None  # lambda; None: the objective's (10 for wgan-gp), else 0
    weight_clip: PositiveFloat | None = None  # c; None: the objective's (0.01 for wgan), else no clipping
    conditional: Literal["none", "cgan", "acgan"] = "none"  # class conditioning (needs labels)
    auxiliary_weight: NonNegativeFloat = 1.0  # weight of the AC-GAN class terms
    r1_gamma: NonNegativeFloat = 0.0  # gamma of the R1 penalty on real images (Mescheder et al. 2018); 0: none
    r1_every: PositiveInt = 16  # lazy regularisation: the R1 phase runs every k steps (Karras et al. 2020)
    instance_noise: NonNegativeFloat = 0.0  # std of noise on D's inputs, annealed linearly to 0 (Sonderby et al. 2017)


# ----------------------------------------------------------------------------- networks


def build_networks(config: GANConfig, info: DataInfo, condition_dim: int, norm: str) -> tuple[nn.Module, nn.Module]:
    """(generator: z (B, D + condition_dim) -> (B, C, s, s), discriminator body: image -> (B, F))."""
    latent = config.latent_dim + condition_dim
    if config.architecture == "dcgan":
        generator = UpConvStack(latent, info.image_size, info.channels, config.generator_width)
        body = DownConvStack(info.image_size, info.channels, config.discriminator_width, out_dim=None, norm=norm)
        init_dcgan_weights(generator)
        init_dcgan_weights(body)
    elif config.architecture == "resnet":
        from genzoo.nn.resnet import ResNetDiscriminatorBody, ResNetGenerator

        generator = ResNetGenerator(latent, info.image_size, info.channels, config.generator_width)
        body = ResNetDiscriminatorBody(info.image_size, info.channels, config.discriminator_width, norm=norm)
    else:
        from genzoo.nn.mlp import MLPDiscriminatorBody, MLPGenerator

        generator = MLPGenerator(latent, out_dim=info.channels * info.image_size**2, width=config.generator_width,
                                 out_shape=(info.channels, info.image_size, info.image_size))
        body = MLPDiscriminatorBody(in_dim=info.channels * info.image_size**2, width=config.discriminator_width)
    return generator, body


class Discriminator(nn.Module):
    """phi(x) -> a score (B, 1) and, for AC-GAN, class logits (B, K)."""

    def __init__(self, body: nn.Module, num_classes: int, conditional: str) -> None:
        super().__init__()
        self.body = body
        self.score = nn.Linear(body.feature_dim, 1)
        self.projection = nn.Embedding(num_classes, body.feature_dim) if conditional == "cgan" else None
        self.classifier = nn.Linear(body.feature_dim, num_classes) if conditional == "acgan" else None
        if self.projection is not None:  # N(0, 1) rows would swamp w^T phi(x) in a wide feature space
            nn.init.normal_(self.projection.weight, 0.0, 0.02)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        features = self.body(x)  # (B, F)
        score = self.score(features)  # (B, 1)
        if self.projection is not None:
            score = score + (self.projection(labels) * features).sum(1, keepdim=True)  # + embed(y)^T phi(x)
        return score, None if self.classifier is None else self.classifier(features)  # (B, 1), (B, K)


def _apply_spectral_norm(module: nn.Module) -> None:
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Conv2d, nn.Linear, nn.Embedding)):
            nn.utils.parametrizations.spectral_norm(layer)


# ----------------------------------------------------------------------------- model


@MODELS.register("gan")
class GAN(GenerativeModel):
    Config = GANConfig
    ema_modules = ("generator",)
    phase_summary = "discriminator xk, r1 every k (if on), generator"

    def __init__(self, config: GANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.objective = ADVERSARIAL_LOSSES.get(config.objective)
        self.conditional = config.conditional != "none"
        if self.conditional and not info.num_classes:
            raise GenzooError(f"a {config.conditional} GAN needs class labels, and this dataset has none; "
                              "use a labelled dataset or model.conditional=none.")
        self.num_classes = info.num_classes or 0
        self.requires = ("image", "label") if self.conditional else ("image",)
        norm = config.discriminator_norm or ("none" if self.objective.gradient_penalty or config.spectral_norm else "batch")
        generator, body = build_networks(config, info, self.num_classes if self.conditional else 0, norm)
        self.generator = generator
        self.discriminator = Discriminator(body, max(self.num_classes, 1), config.conditional)
        if config.architecture == "dcgan":  # DCGAN Sec. 4: all weights from N(0, 0.02), the heads' too
            for head in (self.discriminator.score, self.discriminator.classifier):
                if head is not None:
                    nn.init.normal_(head.weight, 0.0, 0.02)
                    nn.init.zeros_(head.bias)
        if config.spectral_norm:
            _apply_spectral_norm(self.discriminator)
        paper = self.objective.paper
        self.discriminator_steps = config.discriminator_steps or paper.get("critic_steps", 1)
        self.penalty = self.objective.gradient_penalty if config.gradient_penalty is None else config.gradient_penalty
        self.clip = config.weight_clip if config.weight_clip is not None else self.objective.weight_clip
        self.noise_std = config.instance_noise  # this step's instance noise, set by `schedule`

    @property
    def phases(self) -> tuple[Phase, ...]:
        lazy_r1 = (Phase("r1", group="discriminator", every=self.config.r1_every),) if self.config.r1_gamma else ()
        return (
            Phase("discriminator", repeats=self.discriminator_steps),
            *lazy_r1,  # on its own batch of real images
            Phase("generator", fresh_batch=False),  # needs only the batch size and labels: reuse the last batch
        )

    def group_settings(self) -> dict[str, GroupSettings]:
        k = self.config.r1_every
        if not self.config.r1_gamma or k == 1:
            return {}
        c = k / (k + 1)  # Karras et al. (2020), Appendix B: the lazy phase's share of the updates
        return {"discriminator": GroupSettings(lr_scale=c, betas_power=c)}

    def schedule(self, step: int, total: int) -> Scheduled:
        """Instance noise sigma = sigma_0 (1 - step / total): from the configured std down to 0."""
        if not self.config.instance_noise:
            return Scheduled()
        self.noise_std = self.config.instance_noise * max(0.0, 1.0 - step / total)
        return Scheduled(values={"instance_noise": self.noise_std})

    def _noisy(self, x: Tensor) -> Tensor:
        """D's input with instance noise N(0, sigma^2) added (x itself when sigma = 0)."""
        return x + self.noise_std * torch.randn_like(x) if self.noise_std else x

    def param_groups(self) -> dict[str, list]:
        return {
            "discriminator": list(self.discriminator.parameters()),
            "generator": list(self.generator.parameters()),
        }

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"discriminator": self.discriminator_losses, "r1": self.r1_losses, "generator": self.generator_losses}[phase](batch)

    def after_step(self, phase: str) -> None:
        if phase == "discriminator" and self.clip is not None:
            clip_weights(self.discriminator, self.clip)  # WGAN: keep the critic K-Lipschitz

    # -- losses

    def discriminator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        real = batch["image"]  # (B, C, H, W) in [-1, 1]
        labels = batch.get("label") if self.conditional else None  # (B,)
        with torch.no_grad():
            fake = self.generator(self._generator_input(real.shape[0], labels))  # (B, C, H, W)
        real_score, real_classes = self.discriminator(self._noisy(real), labels)  # (B, 1), (B, K) | None
        fake_score, fake_classes = self.discriminator(self._noisy(fake), labels)
        loss_d_real, loss_d_fake = self.objective.discriminator(real_score, fake_score)
        losses = {"loss_d_real": loss_d_real, "loss_d_fake": loss_d_fake}
        total = loss_d_real + loss_d_fake
        if self.penalty:
            losses["gradient_penalty"] = gradient_penalty(lambda x: self.discriminator(x, labels)[0], real, fake)
            total = total + self.penalty * losses["gradient_penalty"]
        if real_classes is not None:  # AC-GAN, Eq. 2: D maximises L_C = log P(C = c | X) on real and fake
            losses["loss_d_class"] = F.cross_entropy(real_classes.float(), labels) + F.cross_entropy(fake_classes.float(), labels)
            total = total + self.config.auxiliary_weight * losses["loss_d_class"]
        if self.objective.probability:  # what D believes, 1 = real
            losses["d_real"] = torch.sigmoid(real_score.detach()).mean()
            losses["d_fake"] = torch.sigmoid(fake_score.detach()).mean()
        else:  # the critic's estimate of the distance between the distributions
            losses["score_gap"] = (real_score.detach().mean() - fake_score.detach().mean())
        return {"total": total, **losses}

    def r1_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """gamma / 2 * R1 * k: the lazy phase stands for the k steps it skipped (Karras et al. 2020, Sec. 3.1)."""
        labels = batch.get("label") if self.conditional else None
        penalty = r1_penalty(lambda x: self.discriminator(x, labels)[0], batch["image"])  # E ||grad_x D(x)||^2
        return {"total": 0.5 * self.config.r1_gamma * self.config.r1_every * penalty, "r1": penalty}

    def generator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        labels = batch.get("label") if self.conditional else None
        fake = self.generator(self._generator_input(batch["image"].shape[0], labels))  # (B, C, H, W)
        fake_score, fake_classes = self.discriminator(self._noisy(fake), labels)
        loss_g = self.objective.generator(fake_score)
        if fake_classes is None:
            return {"total": loss_g}
        loss_g_class = F.cross_entropy(fake_classes.float(), labels)  # AC-GAN, Eq. 3: G maximises L_C - L_S
        return {"total": loss_g + self.config.auxiliary_weight * loss_g_class, "loss_g": loss_g, "loss_g_class": loss_g_class}

    # -- sampling

    def sample_latent(self, n: int, generator: torch.Generator | None = None, truncation: float | None = None) -> Tensor:
        """z ~ N(0, I), (n, D); with `truncation` t, entries with |z| > t are redrawn (Brock et al. 2019)."""
        z = torch.randn(n, self.config.latent_dim, device=self.device, generator=generator)
        if truncation is not None:
            if truncation <= 0:
                raise GenzooError(f"truncation must be positive, got {truncation}; try 0.5 to 1.0.")
            for _ in range(1000):
                outside = z.abs() > truncation
                if not outside.any():
                    break
                z = torch.where(outside, torch.randn(z.shape, device=z.device, generator=generator), z)
        return z

    def _generator_input(self, n: int, labels: Tensor | None, generator: torch.Generator | None = None,
                         truncation: float | None = None, z: Tensor | None = None) -> Tensor:
        z = self.sample_latent(n, generator, truncation) if z is None else z  # (n, D)
        if not self.conditional:
            return z
        one_hot = F.one_hot(labels, self.num_classes).to(z.dtype)  # (n, K)
        return torch.cat([z, one_hot], dim=1)  # (n, D + K)

    def check_labels(self, n: int, labels: Tensor | None) -> Tensor | None:
        if not self.conditional:
            if labels is not None:
                raise GenzooError("this GAN is unconditional and takes no labels; drop them, or train with model.conditional=cgan.")
            return None
        return class_labels(labels, n, self.num_classes, self.device)

    def decode_latent(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """G(z[, y]) for codes z (n, D): (n, C, H, W) in [-1, 1]; differentiable (GAN inversion uses it)."""
        labels = self.check_labels(len(z), labels)
        return self.generator(self._generator_input(len(z), labels, z=z))

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None,
                 truncation: float | None = None, z: Tensor | None = None) -> Tensor:
        labels = self.check_labels(n, labels)
        return self.generator(self._generator_input(n, labels, generator, truncation, z))  # (n, C, H, W) in [-1, 1]

"""StarGAN: one generator for translations between many domains, conditioned on the target domain.

Choi, Choi, Kim, Ha, Kim & Choo, "StarGAN: Unified Generative Adversarial Networks for Multi-Domain
Image-to-Image Translation" (CVPR 2018). The domains are the classes of a labelled dataset (e.g.
Fashion-MNIST's, or `data.classes=[Sandal, Sneaker, Ankle boot]`). G(x, c) reads the image with the
target domain's one-hot label c replicated over its pixels as extra channels (Sec. 3.1); its network is
the ResNet translator of the paper's Appendix (Table 4: c7s1-64, two 4 x 4 stride-2 convolutions, 6
residual blocks, two transposed convolutions back, c7s1-3; affine instance norm). The discriminator
is a PatchGAN of 4 x 4 stride-2 convolutions (LeakyReLU 0.01, no norm) down to a 2 x 2 map (3 x 3 at
28 px) with two heads: D_src, a real/fake score per patch, and D_cls, logits over the K domains.
Objectives (Sec. 3.1, Eqs. 1-7), with WGAN-GP as the adversarial loss (Eq. 8):

    L_D = -L_adv + lambda_cls L_cls^r,                L_G = L_adv + lambda_cls L_cls^f + lambda_rec L_rec
    L_adv = E_x[D_src(x)] - E_{x,c}[D_src(G(x, c))] - lambda_gp E_x^[(||grad D_src(x^)||_2 - 1)^2]
    L_cls^r = E_{x,c'}[-log D_cls(c' | x)]           (real images, their own domain c')
    L_cls^f = E_{x,c}[-log D_cls(c | G(x, c))]       (translations, the target domain c)
    L_rec = E_{x,c,c'}[ ||x - G(G(x, c), c')||_1 ]   (back to the original domain: cycle consistency)

lambda_cls = 1, lambda_rec = 10, lambda_gp = 10; 5 discriminator steps per generator step; Adam
(1e-4, beta1 = 0.5, beta2 = 0.999) with the rate constant for the first half of the run and decaying
linearly to 0 over the second (as the paper's 200k iterations, decayed over the last 100k). Target
domains are the batch's own labels in a random order, as the authors' code draws them.

Left out: domains from several attribute columns (multi-hot labels with a binary cross-entropy
classification loss, as for CelebA) and training on several datasets at once with a mask vector:
no multi-attribute dataset is available offline here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveInt
from torch import Tensor, nn

from genzoo.config import FamilyConfig
from genzoo.errors import GenzooError
from genzoo.losses import ADVERSARIAL_LOSSES, gradient_penalty
from genzoo.models.base import DataInfo, GenerativeModel, Phase, Scheduled
from genzoo.nn.image_to_image import ResNetTranslator, constant_then_linear
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class StarGANConfig(FamilyConfig):
    width: PositiveInt = 64  # channels of the generator's first layer
    discriminator_width: PositiveInt = 64  # channels of the discriminator's first layer, doubling per layer
    blocks: PositiveInt = 6  # residual blocks of the generator
    discriminator_layers: PositiveInt | None = None  # stride-2 layers of D; None: down to a 2 x 2 map (6 at 128 px)
    discriminator_steps: PositiveInt = 5  # n_critic
    classification_weight: NonNegativeFloat = 1.0  # lambda_cls
    reconstruction_weight: NonNegativeFloat = 10.0  # lambda_rec
    gradient_penalty: NonNegativeFloat = 10.0  # lambda_gp
    decay_from: float = Field(0.5, ge=0.0, le=1.0)  # share of the run at a constant rate before the linear decay to 0


# ----------------------------------------------------------------------------- networks


def discriminator_layers(image_size: int) -> int:
    """Stride-2 4 x 4 convolutions that leave a map of side >= 2: 128 -> 6 (2 x 2), 32 -> 4, 28 -> 3 (3 x 3)."""
    layers, side = 0, image_size
    while (side + 2 - 4) // 2 + 1 >= 2:
        side, layers = (side + 2 - 4) // 2 + 1, layers + 1
    return max(layers, 1)


class StarDiscriminator(nn.Module):
    """x (B, C, H, W) -> (D_src: a score per patch (B, 1, h, w), D_cls: domain logits (B, K))."""

    def __init__(self, channels: int, image_size: int, width: int, layers: int, num_domains: int) -> None:
        super().__init__()
        blocks, inputs, side = [], channels, image_size
        for i in range(layers):
            blocks += [nn.Conv2d(inputs, width * 2**i, 4, 2, 1), nn.LeakyReLU(0.01)]
            inputs, side = width * 2**i, (side + 2 - 4) // 2 + 1
        self.body = nn.Sequential(*blocks)
        self.source = nn.Conv2d(inputs, 1, 3, 1, 1, bias=False)  # D_src
        self.domain = nn.Conv2d(inputs, num_domains, side, bias=False)  # D_cls: one output over the whole map

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x)  # (B, F, s, s)
        return self.source(h), self.domain(h).flatten(1)  # (B, 1, s, s), (B, K)


# ----------------------------------------------------------------------------- model


@MODELS.register("stargan")
class StarGAN(GenerativeModel):
    Config = StarGANConfig
    requires = ("image", "label")
    ema_modules = ("generator",)
    phase_summary = "discriminator x5 (WGAN-GP + domain classification), generator"

    def __init__(self, config: StarGANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if not info.num_classes or info.num_classes < 2:
            raise GenzooError("stargan translates between the classes of a labelled dataset, and this one has "
                              f"{info.num_classes or 'no'} class; use a labelled dataset (e.g. fashion-mnist, or "
                              "class sub-folders), optionally with data.classes=[A, B, C].")
        self.num_domains = self.num_classes = info.num_classes
        self.generator = ResNetTranslator(info.channels + self.num_domains, info.channels, config.width, config.blocks,
                                          style="stargan")
        layers = config.discriminator_layers or discriminator_layers(info.image_size)
        self.discriminator = StarDiscriminator(info.channels, info.image_size, config.discriminator_width, layers,
                                               self.num_domains)
        self.critic = ADVERSARIAL_LOSSES.get("wgan-gp")

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("discriminator", repeats=self.config.discriminator_steps),
                Phase("generator", fresh_batch=False))  # G on the last critic batch, as the authors' code

    def param_groups(self) -> dict[str, list]:
        return {"discriminator": list(self.discriminator.parameters()), "generator": list(self.generator.parameters())}

    def schedule(self, step: int, total: int) -> Scheduled:
        """Sec. 4: a constant rate, then a linear decay to 0 (from `decay_from` of the run)."""
        factor = constant_then_linear(step, total, self.config.decay_from)
        return Scheduled(lr={"generator": factor, "discriminator": factor}, values={"lr_factor": factor})

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"discriminator": self.discriminator_losses, "generator": self.generator_losses}[phase](batch)

    def generate_from(self, x: Tensor, labels: Tensor) -> Tensor:
        """G(x, c): x (B, C, H, W) and target domains (B,) -> (B, C, H, W) in [-1, 1]."""
        c = F.one_hot(labels, self.num_domains).to(x.dtype)  # (B, K)
        c = c[:, :, None, None].expand(-1, -1, *x.shape[-2:])  # (B, K, H, W): the label over every pixel
        return self.generator(torch.cat([x, c], dim=1))  # input (B, C + K, H, W)

    def target_domains(self, labels: Tensor) -> Tensor:
        """The batch's labels in a random order (global random state): the target domains c (B,)."""
        return labels[torch.randperm(len(labels), device=labels.device)]

    def discriminator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x, original = batch["image"], batch["label"]  # (B, C, H, W), (B,) the domains c'
        with torch.no_grad():
            fake = self.generate_from(x, self.target_domains(original))  # G(x, c)
        real_score, real_logits = self.discriminator(x)
        fake_score, _ = self.discriminator(fake)
        loss_d_real, loss_d_fake = self.critic.discriminator(real_score, fake_score)  # -E D_src(x), E D_src(G(x, c))
        loss_d_class = F.cross_entropy(real_logits.float(), original)  # L_cls^r
        penalty = gradient_penalty(lambda images: self.discriminator(images)[0], x, fake)
        total = loss_d_real + loss_d_fake + self.config.gradient_penalty * penalty + self.config.classification_weight * loss_d_class
        return {"total": total, "loss_d_real": loss_d_real, "loss_d_fake": loss_d_fake, "loss_d_class": loss_d_class,
                "gradient_penalty": penalty, "score_gap": real_score.detach().mean() - fake_score.detach().mean()}

    def generator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x, original = batch["image"], batch["label"]
        target = self.target_domains(original)  # c (B,)
        fake = self.generate_from(x, target)  # G(x, c)
        fake_score, fake_logits = self.discriminator(fake)
        loss_g = self.critic.generator(fake_score)  # -E D_src(G(x, c))
        loss_g_class = F.cross_entropy(fake_logits.float(), target)  # L_cls^f
        loss_reconstruction = (x - self.generate_from(fake, original)).abs().mean()  # ||x - G(G(x, c), c')||_1
        total = loss_g + self.config.classification_weight * loss_g_class + self.config.reconstruction_weight * loss_reconstruction
        return {"total": total, "loss_g": loss_g, "loss_g_class": loss_g_class, "loss_reconstruction": loss_reconstruction}

    # -- translation

    def domain_labels(self, to: str | int | Tensor, n: int) -> Tensor:
        """Target domains (n,) from a class index, a class name or a (n,) tensor of class indices."""
        if isinstance(to, Tensor):
            labels = to.to(self.device).long().flatten()
            if len(labels) != n:
                raise GenzooError(f"{len(labels)} target domains for {n} images; give one domain for all, or one per image.")
            if len(labels) and (labels.min() < 0 or labels.max() >= self.num_domains):
                raise GenzooError(f"target domains must be class indices in [0, {self.num_domains - 1}]; got values in "
                                  f"[{int(labels.min())}, {int(labels.max())}].")
            return labels
        names = [str(name).lower() for name in (self.info.class_names or ())]
        if isinstance(to, int) and not isinstance(to, bool) and 0 <= to < self.num_domains:
            index = to
        elif str(to).lower() in names:
            index = names.index(str(to).lower())
        elif str(to).isdigit() and int(str(to)) < self.num_domains:
            index = int(str(to))
        else:
            known = ", ".join(f"{i} ({name})" for i, name in enumerate(self.info.class_names)) if self.info.class_names \
                else f"0 to {self.num_domains - 1}"
            raise GenzooError(f"{to!r} is not a domain of this model; use one of: {known}.")
        return torch.full((n,), index, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def translate(self, x: Tensor, to: str | int | Tensor = 0) -> Tensor:
        """G(x, c): images (B, C, H, W) in [-1, 1] to the domain `to` (a class index or name, or (B,) indices)."""
        return self.generate_from(x, self.domain_labels(to, len(x)))

    @torch.no_grad()
    def preview(self, batch: dict[str, Tensor], n: int, seed: int = 0) -> Tensor:
        """Rows of (input x, x in the next three domains (c' + 1, c' + 2, c' + 3 mod K))."""
        x, labels = batch["image"][: max(1, n // 4)], batch["label"][: max(1, n // 4)]
        rows = [x] + [self.generate_from(x, (labels + shift) % self.num_domains) for shift in (1, 2, 3)]
        return torch.stack(rows, dim=1).flatten(0, 1)  # (4k, C, H, W)

"""CycleGAN: two generators between unpaired domains, held together by cycle consistency.

Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks" (ICCV 2017). G: a -> b and F: b -> a are ResNet generators (Appendix 7.2,
`genzoo.nn.image_to_image.ResNetTranslator`: 6 residual blocks up to 128 px, 9 above), D_b and D_a
70 x 70 PatchGANs with instance norm (the patch scaled to the image size). The full objective, Eq. 3:

    L(G, F, D_a, D_b) = L_GAN(G, D_b, a, b) + L_GAN(F, D_a, b, a) + lambda L_cyc(G, F),   lambda = 10
    L_cyc(G, F) = E_a[ ||F(G(a)) - a||_1 ] + E_b[ ||G(F(b)) - b||_1 ]                         (Eq. 2)

with the least-squares adversarial loss of Sec. 4: G minimises E_a[(D_b(G(a)) - 1)^2], D_b minimises
1/2 (E_b[(D_b(b) - 1)^2] + E_a[D_b(G(a))^2]) (the objective halved for D), and the identity loss of
Sec. 5.2 (Taigman et al. 2017), weighted 0.5 lambda as the authors' code:

    L_identity(G, F) = E_b[ ||G(b) - b||_1 ] + E_a[ ||F(a) - a||_1 ].

Each discriminator learns from a history of 50 generated images (Sec. 4, after Shrivastava et al.
2017): `HistoryPool`, kept in buffers so that it is saved in model.safetensors and a resumed run draws
exactly as one straight through. Adam (2e-4, beta1 = 0.5); the learning rate is constant for the first
half of the run and decays linearly to 0 over the second (`model.decay_from`): a family schedule,
because the run-level train.lr_schedule=linear decays from the first step.

Each step runs the generators first and then the discriminators on the same batch, as the authors'
code does: D_b and D_a learn from the images the generators made before their update (kept from the
generator phase; recomputed when the discriminator phase runs alone).
"""

from __future__ import annotations

import torch
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveInt
from torch import Tensor, nn

from genzoo.config import FamilyConfig
from genzoo.errors import GenzooError
from genzoo.losses import ADVERSARIAL_LOSSES
from genzoo.models.base import DataInfo, GenerativeModel, Phase, Scheduled
from genzoo.nn.image_to_image import PatchDiscriminator, ResNetTranslator, constant_then_linear, init_normal, patch_layers
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class CycleGANConfig(FamilyConfig):
    width: PositiveInt = 64  # channels of the generators' first layer (c7s1-64)
    discriminator_width: PositiveInt = 64  # channels of the PatchGANs' first layer
    blocks: PositiveInt | None = None  # residual blocks; None: 6 up to 128 px, 9 above (Appendix 7.2)
    patch_layers: PositiveInt | None = None  # PatchGAN stride-2 layers; None: scaled to the image size
    cycle_weight: NonNegativeFloat = 10.0  # lambda of Eq. 3; 0: no cycle loss (the "GAN alone" ablation)
    identity_weight: NonNegativeFloat = 0.5  # identity loss weight, times lambda (0.5 lambda as the authors' code); 0: none
    pool_size: NonNegativeInt = 50  # generated images each discriminator remembers; 0: no history
    decay_from: float = Field(0.5, ge=0.0, le=1.0)  # share of the run at a constant rate before the linear decay to 0


# ----------------------------------------------------------------------------- history pool


class HistoryPool(nn.Module):
    """A buffer of the last `size` generated images (Shrivastava et al. 2017, Sec. 2.3; CycleGAN Sec. 4).

    For each image of a batch, in order: while the pool is not full, store it and return it; once full,
    with probability 1/2 return a stored image chosen uniformly and store the new one in its place, else
    return the new image. The draws come from the global torch random state (u ~ U[0, 1) and a slot
    index per image, drawn for every image whatever happens), which the trainer saves and restores; the
    images and their count are buffers, saved with the weights. Computed for the whole batch at once
    (no host synchronisation): image i reads the latest earlier write to its slot in the same batch."""

    def __init__(self, size: int, channels: int, image_size: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, channels, image_size, image_size))  # (S, C, H, W)
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # images stored so far, at most S

    @torch.no_grad()
    def forward(self, fakes: Tensor) -> Tensor:
        if self.size == 0:
            return fakes
        fakes = fakes.detach().to(self.images.dtype)  # (B, C, H, W)
        batch, device = len(fakes), fakes.device
        u = torch.rand(batch, device=device)  # (B,) the coin of each image
        slot = torch.randint(0, self.size, (batch,), device=device)  # (B,) the stored image it may swap with
        order = torch.arange(batch, device=device)  # (B,)
        position = self.count + order  # (B,) where image i goes while the pool fills
        filling = position < self.size
        swap = ~filling & (u > 0.5)  # return a stored image, keep the new one in its place
        slot = torch.where(filling, position, slot)
        writes = filling | swap  # (B,) images that are stored
        same = (slot[:, None] == slot[None, :]) & writes[None, :]  # (B, B): [i, k] k writes to i's slot
        earlier = torch.where(same & (order[None, :] < order[:, None]), order[None, :], -1).amax(1)  # (B,) latest k < i
        stored = self.images[slot.clamp(max=self.size - 1)]  # (B, C, H, W) the slot before this batch
        read = torch.where((earlier >= 0)[:, None, None, None], fakes[earlier.clamp(min=0)], stored)
        returned = torch.where(swap[:, None, None, None], read, fakes)  # (B, C, H, W)
        # the pool after the batch: each slot holds its last write (-1: none in this batch)
        slots = torch.arange(self.size, device=device)  # (S,)
        last = torch.where((slot[None, :] == slots[:, None]) & writes[None, :], order[None, :], -1).amax(1)  # (S,)
        self.images.copy_(torch.where((last >= 0)[:, None, None, None], fakes[last.clamp(min=0)], self.images))
        self.count.copy_((self.count + batch).clamp(max=self.size))
        return returned


# ----------------------------------------------------------------------------- model


@MODELS.register("cyclegan")
class CycleGAN(GenerativeModel):
    Config = CycleGANConfig
    requires = ("a", "b")
    ema_modules = ("generator_ab", "generator_ba")
    phase_summary = "generators (G: a->b, F: b->a), discriminators (D_b, D_a) on the same batch"

    def __init__(self, config: CycleGANConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        blocks = config.blocks or (6 if info.image_size <= 128 else 9)
        self.generator_ab = ResNetTranslator(info.channels, info.channels, config.width, blocks)  # G
        self.generator_ba = ResNetTranslator(info.channels, info.channels, config.width, blocks)  # F
        layers = config.patch_layers or patch_layers(info.image_size)
        self.discriminator_b = PatchDiscriminator(info.channels, config.discriminator_width, layers, "instance")  # D_b
        self.discriminator_a = PatchDiscriminator(info.channels, config.discriminator_width, layers, "instance")  # D_a
        init_normal(self)
        self.pool_b = HistoryPool(config.pool_size, info.channels, info.image_size)  # G(a) for D_b
        self.pool_a = HistoryPool(config.pool_size, info.channels, info.image_size)  # F(b) for D_a
        self.least_squares = ADVERSARIAL_LOSSES.get("lsgan")
        self._fakes: tuple[Tensor, Tensor] | None = None  # G(a), F(b) of the generator phase, for the discriminators

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("generator"), Phase("discriminator", fresh_batch=False))

    def param_groups(self) -> dict[str, list]:
        return {"generator": [*self.generator_ab.parameters(), *self.generator_ba.parameters()],
                "discriminator": [*self.discriminator_b.parameters(), *self.discriminator_a.parameters()]}

    def schedule(self, step: int, total: int) -> Scheduled:
        """Sec. 4: the rate is constant, then decays linearly to 0 (from `decay_from` of the run)."""
        factor = constant_then_linear(step, total, self.config.decay_from)
        return Scheduled(lr={"generator": factor, "discriminator": factor}, values={"lr_factor": factor})

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"generator": self.generator_losses, "discriminator": self.discriminator_losses}[phase](batch)

    def generator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        a, b = batch["a"], batch["b"]  # (B, C, H, W) each, unpaired
        fake_b, fake_a = self.generator_ab(a), self.generator_ba(b)  # G(a), F(b)
        self._fakes = (fake_b.detach(), fake_a.detach())
        loss_gan_ab = (self.discriminator_b(fake_b) - 1).pow(2).mean()  # E_a (D_b(G(a)) - 1)^2
        loss_gan_ba = (self.discriminator_a(fake_a) - 1).pow(2).mean()  # E_b (D_a(F(b)) - 1)^2
        losses = {"loss_gan_ab": loss_gan_ab, "loss_gan_ba": loss_gan_ba}
        total = loss_gan_ab + loss_gan_ba
        lam = self.config.cycle_weight
        if lam:  # Eq. 2: forward and backward cycle consistency
            losses["loss_cycle_a"] = (self.generator_ba(fake_b) - a).abs().mean()  # ||F(G(a)) - a||_1
            losses["loss_cycle_b"] = (self.generator_ab(fake_a) - b).abs().mean()  # ||G(F(b)) - b||_1
            total = total + lam * (losses["loss_cycle_a"] + losses["loss_cycle_b"])
        if self.config.identity_weight:  # Sec. 5.2: a generator fed its own target domain should change nothing
            losses["loss_identity_b"] = (self.generator_ab(b) - b).abs().mean()  # ||G(b) - b||_1
            losses["loss_identity_a"] = (self.generator_ba(a) - a).abs().mean()  # ||F(a) - a||_1
            total = total + lam * self.config.identity_weight * (losses["loss_identity_b"] + losses["loss_identity_a"])
        return {"total": total, **losses}

    def discriminator_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        a, b = batch["a"], batch["b"]
        if self._fakes is None:
            with torch.no_grad():
                self._fakes = (self.generator_ab(a), self.generator_ba(b))
        (fake_b, fake_a), self._fakes = self._fakes, None
        fake_b, fake_a = self.pool_b(fake_b), self.pool_a(fake_a)  # (B, C, H, W) each, from the history
        real_b, fake_b_loss = self.least_squares.discriminator(self.discriminator_b(b), self.discriminator_b(fake_b))
        real_a, fake_a_loss = self.least_squares.discriminator(self.discriminator_a(a), self.discriminator_a(fake_a))
        loss_d_b, loss_d_a = real_b + fake_b_loss, real_a + fake_a_loss  # 1/2 (D(y) - 1)^2 + 1/2 D(G(x))^2 each
        return {"total": loss_d_b + loss_d_a, "loss_d_b": loss_d_b, "loss_d_a": loss_d_a}

    @torch.no_grad()
    def translate(self, x: Tensor, to: str | int | Tensor = "b") -> Tensor:
        """G(x) for to = b (or its name, or 1), F(x) for to = a: (B, C, H, W) in [-1, 1] -> the same shape."""
        if isinstance(to, Tensor):
            raise GenzooError("a CycleGAN translates a whole batch to one domain; give to='a' or to='b'.")
        return (self.generator_ba, self.generator_ab)[self.domain_index(to)](x)

"""GAN-CLS: a text-conditional GAN whose discriminator also judges whether image and text match.

Reed et al., "Generative Adversarial Text to Image Synthesis" (2016). A sentence embedding phi(t) of the
caption (here the mean token embedding of the Transformer text encoder of `genzoo.nn.text`, the one latent
diffusion uses) is compressed by a fully connected layer to `text_dim` (128) and a leaky ReLU, and
- the generator G(z, phi(t)) takes it concatenated to the noise z (Sec. 3.1; DCGAN layers, `genzoo.nn.dcgan`);
- the discriminator D(x, phi(t)) replicates it spatially over its 4 x 4 feature map, concatenates it in depth,
  and scores the pair with a 1 x 1 convolution, a leaky ReLU and a 4 x 4 convolution (Sec. 3.1).
Matching-aware discrimination, GAN-CLS (Sec. 4.2, Algorithm 1): besides real images with their captions
(s_r) and fakes with theirs (s_f), D sees real images with mismatched captions (s_w, here the caption of
the next image in the batch, which is rarely the same) and learns to call them fake:
    L_D = log D(x, h) + (log(1 - D(x, h_mismatched)) + log(1 - D(G(z, h), h))) / 2
with the (D loss, G loss) pairs of `genzoo.losses` (non-saturating by default). GAN-INT (Sec. 4.3): G also
learns from interpolated embeddings beta h_1 + (1 - beta) h_2 (beta = 1/2) of two captions of the batch,
which no image matches, weighted by `interpolation` (0: off). Reed et al. pre-trained their text encoder
and kept it fixed; here it is trained from scratch by the discriminator's losses (its parameter group),
and the generator reads its output without moving it.
`generate(n)` without prompts draws them from the training captions the model saw.
"""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat, PositiveInt, field_validator
from torch import Tensor, nn

from genzoo.config import FamilyConfig
from genzoo.data.captions import Tokenizer
from genzoo.errors import GenzooError
from genzoo.losses import ADVERSARIAL_LOSSES
from genzoo.models.base import DataInfo, GenerativeModel, Phase
from genzoo.nn import DownConvStack, UpConvStack, base_and_doublings, init_dcgan_weights
from genzoo.nn.text import CaptionBank, TextEncoder, pooled
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class GANCLSConfig(FamilyConfig):
    objective: str = "non-saturating"  # a (D loss, G loss) pair of genzoo.losses; Reed et al. use the log loss
    latent_dim: PositiveInt = 100  # z ~ N(0, I)
    text_dim: PositiveInt = 128  # the compressed sentence embedding (Reed et al.: 128)
    generator_width: PositiveInt = 64
    discriminator_width: PositiveInt = 64
    text_width: PositiveInt = 64  # width of the text encoder's token embeddings
    text_depth: PositiveInt = 2
    text_heads: PositiveInt = 2
    interpolation: NonNegativeFloat = 1.0  # weight of the GAN-INT term on interpolated captions; 0: GAN-CLS alone

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, name: str) -> str:
        ADVERSARIAL_LOSSES.get(name)  # an unknown name fails here, listing the known ones
        return name


# ----------------------------------------------------------------------------- networks


class TextGenerator(nn.Module):
    """G(z, phi(t)): z (B, D), sentence embedding (B, E) -> image (B, C, S, S) in [-1, 1]."""

    def __init__(self, config: GANCLSConfig, info: DataInfo) -> None:
        super().__init__()
        self.compress = nn.Sequential(nn.Linear(config.text_width, config.text_dim), nn.LeakyReLU(0.2))
        self.net = UpConvStack(config.latent_dim + config.text_dim, info.image_size, info.channels, config.generator_width)
        init_dcgan_weights(self.net)

    def forward(self, z: Tensor, sentence: Tensor) -> Tensor:
        return self.net(torch.cat([z, self.compress(sentence)], dim=1))  # (B, D + 128) -> (B, C, S, S)


class TextDiscriminator(nn.Module):
    """D(x, phi(t)): image (B, C, S, S), sentence embedding (B, E) -> score (B, 1)."""

    def __init__(self, config: GANCLSConfig, info: DataInfo) -> None:
        super().__init__()
        base, doublings = base_and_doublings(info.image_size)
        self.base, self.features = base, config.discriminator_width * 2 ** (doublings - 1)
        self.body = DownConvStack(info.image_size, info.channels, config.discriminator_width, out_dim=None)
        self.compress = nn.Sequential(nn.Linear(config.text_width, config.text_dim), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(nn.Conv2d(self.features + config.text_dim, self.features, 1, bias=False),
                                   nn.BatchNorm2d(self.features), nn.LeakyReLU(0.2, True),
                                   nn.Conv2d(self.features, 1, base))
        init_dcgan_weights(self)

    def forward(self, x: Tensor, sentence: Tensor) -> Tensor:
        features = self.body(x).view(len(x), self.features, self.base, self.base)  # (B, F, b, b)
        text = self.compress(sentence)[:, :, None, None].expand(-1, -1, self.base, self.base)  # (B, 128, b, b): replicated
        return self.joint(torch.cat([features, text], dim=1)).flatten(1)  # (B, 1)


# ----------------------------------------------------------------------------- model


@MODELS.register("gan-cls")
class GANCLS(GenerativeModel):
    Config = GANCLSConfig
    ema_modules = ("generator", "text_encoder", "captions")
    phase_summary = "discriminator (+ text encoder), generator"

    def __init__(self, config: GANCLSConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        self.requires = ("image", "caption")
        self.tokenizer = Tokenizer.from_info(info, "gan-cls")
        self.objective = ADVERSARIAL_LOSSES.get(config.objective)
        self.text_encoder = TextEncoder(info.vocab_size, info.sequence_length, config.text_width, config.text_depth, config.text_heads)
        self.generator = TextGenerator(config, info)
        self.discriminator = TextDiscriminator(config, info)
        self.captions = CaptionBank(info.sequence_length)

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("discriminator"), Phase("generator", fresh_batch=False))

    def param_groups(self) -> dict[str, list]:
        return {"discriminator": [*self.discriminator.parameters(), *self.text_encoder.parameters()],
                "generator": list(self.generator.parameters())}

    def sentence(self, tokens: Tensor) -> Tensor:
        """phi(t): the mean token embedding of each caption, (B, L) -> (B, E)."""
        return pooled(*self.text_encoder(tokens))

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x, tokens = batch["image"], batch["caption"]  # (B, C, H, W), (B, L)
        z = torch.randn(len(x), self.config.latent_dim, device=x.device)  # (B, D)
        if phase == "discriminator":
            self.captions.add(tokens)
            h = self.sentence(tokens)  # (B, E): trained by these losses
            h_mismatched = h.roll(1, dims=0)  # the caption of another image
            with torch.no_grad():
                fake = self.generator(z, h)  # (B, C, H, W)
            s_r, s_w, s_f = self.discriminator(x, h), self.discriminator(x, h_mismatched), self.discriminator(fake, h)
            loss_d_real, loss_d_fake = self.objective.discriminator(s_r.float(), s_f.float())
            loss_d_mismatched = self.objective.discriminator(s_r.float(), s_w.float())[1]
            total = loss_d_real + (loss_d_mismatched + loss_d_fake) / 2  # Algorithm 1, line 9
            return {"total": total, "loss_d_real": loss_d_real, "loss_d_fake": loss_d_fake,
                    "loss_d_mismatched": loss_d_mismatched}
        with torch.no_grad():
            h = self.sentence(tokens)  # the text encoder belongs to the discriminator's group
        loss_g = self.objective.generator(self.discriminator(self.generator(z, h), h).float())
        losses = {"total": loss_g, "loss_g": loss_g}
        if self.config.interpolation:  # GAN-INT, beta = 1/2: captions between two of the batch
            h_between = 0.5 * (h + h.roll(1, dims=0))
            z_between = torch.randn_like(z)
            losses["loss_g_interpolated"] = self.objective.generator(
                self.discriminator(self.generator(z_between, h_between), h_between).float())
            losses["total"] = loss_g + self.config.interpolation * losses["loss_g_interpolated"]
        return losses

    # -- sampling

    @torch.no_grad()
    def preview(self, batch: dict[str, Tensor], n: int, seed: int = 0) -> Tensor:
        """Samples for the captions of the preview batch (fixed prompts, so the grids show progress)."""
        return self.sample(batch["caption"][:n], torch.Generator(device=self.device).manual_seed(seed))

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None,
                 prompts: str | list[str] | None = None) -> Tensor:
        """n images (n, C, H, W) in [-1, 1] for one prompt, one per sample, or (None) prompts drawn from the
        training captions."""
        if labels is not None:
            raise GenzooError("this text-to-image model takes prompts, not class labels; give --prompt instead of --labels.")
        tokens = self.captions.draw(n, generator) if prompts is None else self.tokenizer.prompts(prompts, n)
        return self.sample(tokens.to(self.device), generator)

    @torch.no_grad()
    def sample(self, tokens: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Images (n, C, H, W) in [-1, 1] for prompt tokens (n, L)."""
        z = torch.randn(len(tokens), self.config.latent_dim, device=self.device, generator=generator)
        return self.generator(z, self.sentence(tokens))

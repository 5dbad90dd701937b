"""The chairs generator: an up-convolutional network from (chair, view) to image and mask.

Dosovitskiy, Springenberg & Brox, "Learning to Generate Chairs with Convolutional Neural Networks"
(CVPR 2015), Sec. 3: a chair's code c and the view v = (sin az, cos az, sin el, cos el) each pass two
fully connected layers (FC-1/FC-2, 512 units in the paper), are concatenated and pass two more
(FC-3/FC-4, 1024), and a last one (FC-5) is reshaped to a small feature map that "up-convolutions"
grow to the image: unpooling (each entry becomes the top-left entry of a 2 x 2 block of zeros) then a
5 x 5 convolution and a leaky ReLU, halving the channels at each doubling of the size. Two outputs:
the RGB image (tanh, in [-1, 1]) and the segmentation mask (sigmoid, in [0, 1]). Eq. 1 trains both by
squared error:
    min_W  sum_i  L_RGB(u_RGB(h(c_i, v_i)), x_i) + lambda L_segm(u_segm(h(c_i, v_i)), s_i)
with `mask_weight` = lambda here. L_RGB is the squared error (`loss: mse`), or any weighted sum of
genzoo's image distances, e.g. `loss: {mse: 1, perceptual: 0.05}`: the lecture's point is that the
pixel loss alone averages what it cannot predict (sharp edges at unseen views, thin legs) into blur.

The code c: `code: identity` is the paper's one-hot of the chair's number in the training set (an
embedding, i.e. FC-1 on the one-hot); `code: parameters` feeds the renderer's type vector instead,
which names chairs the network never saw. Deviations, stated: no transformation input theta (no
augmentation), and the RGB and mask outputs share the up-convolution stack up to the last layer (the
paper has a separate, narrower stack for the mask).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import NonNegativeFloat, PositiveInt
from torch import Tensor, nn

from genzoo.data import chairs as chair_data
from genzoo.data.chair_render import random_types
from genzoo.errors import ConfigError, GenzooError
from genzoo.losses import ImageLoss
from genzoo.models.autoencoder import ReconstructionConfig
from genzoo.models.base import DataInfo, GenerativeModel, Picture
from genzoo.nn import base_and_doublings
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class ChairsConfig(ReconstructionConfig):
    code: Literal["identity", "parameters"] = "identity"  # the chair's number (the paper) or its type vector
    hidden: PositiveInt = 512  # units of FC-1/FC-2 per input; FC-3/FC-4 have twice as many
    width: PositiveInt = 32  # channels at the output resolution, doubled at each halving
    mask_weight: NonNegativeFloat = 1.0  # lambda of Eq. 1, on the mask's squared error


# ----------------------------------------------------------------------------- networks


def unpool(x: Tensor) -> Tensor:
    """Sec. 3: each entry of (B, C, H, W) becomes the top-left entry of a 2 x 2 block of zeros: (B, C, 2H, 2W)."""
    out = x.new_zeros(x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3])
    out[:, :, ::2, ::2] = x
    return out


class UpConvolution(nn.Module):
    """Unpooling, then a 5 x 5 convolution and a leaky ReLU (slope 0.2). Computed as one transposed
    convolution of stride 2, which is the same map with the unpooled zeros skipped (4 x fewer operations;
    `unpool` and a test show the equivalence): conv(unpool(x), W)[p] = sum_i x[i] W[p - 2 i + 2], W flipped."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(channels_in, channels_out, 5, stride=2, padding=2, output_padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.conv(x), 0.2)  # (B, C', 2H, 2W)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size_in, size_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(size_in, size_out), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


class ChairDecoder(nn.Module):
    """Joint code h (B, 2 hidden) -> FC-3, FC-4, FC-5 -> (B, C0, b, b) -> up-convolutions -> image, mask."""

    def __init__(self, hidden: int, width: int, image_size: int, channels: int) -> None:
        super().__init__()
        self.base, doublings = base_and_doublings(image_size)
        self.start_channels = width * 2**doublings
        self.fully_connected = nn.Sequential(_mlp([2 * hidden, 2 * hidden, 2 * hidden]),  # FC-3, FC-4
                                             nn.Linear(2 * hidden, self.start_channels * self.base**2), nn.LeakyReLU(0.2))
        self.up = nn.Sequential(*(UpConvolution(width * 2 ** (k + 1), width * 2**k) for k in reversed(range(doublings))))
        self.to_image = nn.Conv2d(width, channels, 5, padding=2)
        self.to_mask = nn.Conv2d(width, 1, 5, padding=2)
        # Start at the renders' white background (tanh(1.5) = 0.91) and a mostly empty mask (sigmoid(-1.6) = 0.17):
        # from zero outputs, Adam's first steps push every pixel towards white at once through every layer, the
        # outputs saturate (pre-activations in the hundreds) and training stalls at a blank image.
        nn.init.constant_(self.to_image.bias, 1.5)
        nn.init.constant_(self.to_mask.bias, -1.6)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        features = self.fully_connected(h).view(len(h), self.start_channels, self.base, self.base)  # (B, C0, b, b)
        features = self.up(features)  # (B, width, s, s)
        return torch.tanh(self.to_image(features)), torch.sigmoid(self.to_mask(features))  # (B, C, s, s), (B, 1, s, s)


# ----------------------------------------------------------------------------- model


@MODELS.register("chairs")
class ChairsGenerator(GenerativeModel):
    Config = ChairsConfig
    phase_summary = "main (image + mask from chair and view)"
    ema_modules = ("code_net", "view_net", "decoder")

    def __init__(self, config: ChairsConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if info.type_dim is None or info.num_types is None:
            raise ConfigError("the chairs family learns from rendered objects with known types and views; "
                              "use data.name=chairs.")
        if config.code == "identity":
            self.code_net = nn.Sequential(nn.Embedding(info.num_types, config.hidden), nn.LeakyReLU(0.2),  # FC-1 on a one-hot
                                          _mlp([config.hidden, config.hidden]))  # FC-2
            self.requires = ("image", "mask", "view", "chair")
        else:
            self.code_net = _mlp([info.type_dim, config.hidden, config.hidden])  # FC-1, FC-2
            self.requires = ("image", "mask", "view", "type")
        self.view_net = _mlp([4, config.hidden, config.hidden])  # FC-1, FC-2 of the view
        self.decoder = ChairDecoder(config.hidden, config.width, info.image_size, info.channels)
        self.loss = ImageLoss(config.loss_weights, config.perceptual_network)

    def draw(self, code: Tensor, view: Tensor) -> tuple[Tensor, Tensor]:
        """Image (B, C, s, s) in [-1, 1] and mask (B, 1, s, s) in [0, 1] of chairs `code` (B,) numbers or
        (B, TYPE_DIM) types (as the config's `code`) from views (B, 4)."""
        h = torch.cat([self.code_net(code), self.view_net(view)], dim=1)  # (B, 2 hidden)
        return self.decoder(h)

    def _code(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["chair"] if self.config.code == "identity" else batch["type"]

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        image, mask = self.draw(self._code(batch), batch["view"])  # (B, C, s, s), (B, 1, s, s)
        loss_image, parts = self.loss(image, batch["image"])  # (B,), {name: (B,)}
        loss_mask = (mask - batch["mask"]).pow(2).flatten(1).mean(1)  # (B,)
        total = loss_image + self.config.mask_weight * loss_mask  # Eq. 1
        return {"total": total.mean(), "mask": loss_mask.mean(), **{name: value.mean() for name, value in parts.items()}}

    # -- capabilities

    def _chair_codes(self, chair: int | Tensor, n: int) -> Tensor:
        """Codes (n,) or (n, TYPE_DIM) of chairs given by number (one for all, or (n,))."""
        numbers = torch.as_tensor(chair).long().reshape(-1).cpu()
        numbers = numbers.expand(n) if len(numbers) == 1 else numbers
        if self.config.code == "identity":
            if numbers.min() < 0 or numbers.max() >= self.info.num_types:
                raise GenzooError(f"this chairs model knows chairs 0..{self.info.num_types - 1}; pick a chair in that range.")
            return numbers.to(self.device)
        if numbers.min() < 0:
            raise GenzooError("chair numbers are 0 or more; pick a chair of the collection by its number.")
        return chair_data.chair_types(chair_data.CHAIR_SEED, numbers.tolist()).to(self.device)

    @torch.no_grad()
    def render(self, azimuth: Tensor, elevation: Tensor, chair: int | Tensor = 0, types: Tensor | None = None) -> Tensor:
        """Chair number `chair` (one for all or (B,)), or chairs of type vectors `types` (B, TYPE_DIM) with
        `code: parameters`, from views azimuth, elevation (B,) radians: (B, C, s, s) in [-1, 1]."""
        azimuth, elevation = torch.as_tensor(azimuth).float().reshape(-1), torch.as_tensor(elevation).float().reshape(-1)
        if types is not None:
            if self.config.code != "parameters":
                raise GenzooError("a chairs model with code=identity knows chairs by number, not by type; give a chair number.")
            code = types.float().to(self.device)
        else:
            code = self._chair_codes(chair, len(azimuth))
        return self.draw(code, chair_data.view_code(azimuth, elevation).to(self.device))[0]

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n chairs at random views (azimuth uniform, elevation between the dataset's two): training chairs
        drawn uniformly (`code: identity`), or new chairs from the renderer's prior (`code: parameters`,
        of the classes `labels` when given)."""
        device = generator.device if generator is not None else torch.device("cpu")
        azimuth = torch.rand(n, generator=generator, device=device) * 2 * math.pi
        low, high = chair_data.ELEVATIONS
        elevation = low + (high - low) * torch.rand(n, generator=generator, device=device)
        if self.config.code == "identity":
            if labels is not None:
                raise GenzooError("a chairs model with code=identity draws chairs of its training set and takes no labels; "
                                  "train with model.code=parameters to draw chairs of a class.")
            code = torch.randint(self.info.num_types, (n,), generator=generator, device=device)
        else:
            if labels is not None:
                labels = torch.as_tensor(labels).long().reshape(-1)
                if len(labels) != n or labels.min() < 0 or labels.max() >= len(chair_data.CLASSES):
                    raise GenzooError(f"labels must be {n} chair classes in [0, {len(chair_data.CLASSES) - 1}] "
                                      f"({', '.join(chair_data.CLASSES)}).")
            code = random_types(n, generator if device.type == "cpu" else None, labels)
        return self.draw(code.to(self.device), chair_data.view_code(azimuth, elevation).to(self.device))[0]

    @torch.no_grad()
    def preview(self, batch: dict[str, Tensor], n: int, seed: int = 0) -> Tensor:
        """Training images beside the model's drawing of the same (chair, view): (2k, C, s, s)."""
        k = max(1, n // 2)
        drawn, _ = self.draw(self._code(batch)[:k], batch["view"][:k])
        return torch.stack([batch["image"][:k], drawn], dim=1).flatten(0, 1)

    @torch.no_grad()
    def interpolate(self, chair_a: int, chair_b: int, steps: int, azimuth: float, elevation: float) -> Tensor:
        """Sec. 5.3: images (steps, C, s, s) along the straight line between the codes of two chairs (their
        FC-2 features, as the paper interpolates the input one-hot vectors, which FC-1 maps linearly), one view."""
        codes = self.code_net(self._chair_codes(torch.tensor([chair_a, chair_b]), 2))  # (2, hidden)
        t = torch.linspace(0, 1, steps, device=self.device)[:, None]  # (steps, 1)
        mixed = (1 - t) * codes[0] + t * codes[1]  # (steps, hidden)
        view = chair_data.view_code(torch.full((steps,), azimuth), torch.full((steps,), elevation)).to(self.device)
        return self.decoder(torch.cat([mixed, self.view_net(view)], 1))[0]

    @torch.no_grad()
    def pictures(self, data: object = None, generator: torch.Generator | None = None) -> list[Picture]:
        """For the report: four chairs turning through unseen views (true render above the model's), and
        walks between chairs."""
        chairs = torch.arange(min(4, self.info.num_types or 4))
        azimuth = (torch.arange(12) + 0.5) * (2 * math.pi / 12)  # every 30 degrees, off the 15-degree training grid
        elevation = torch.full((12,), chair_data.ELEVATIONS[1])
        rows = []
        for chair in chairs.tolist():
            truth, _ = chair_data.render_views(chair_data.chair_types(chair_data.CHAIR_SEED, [chair]).expand(12, -1),
                                               azimuth, elevation, self.info.image_size)
            rows += [_channels(truth, self.info.channels).to(self.device), self.render(azimuth, elevation, chair)]
        pictures = [Picture("rotation", "rotation through unseen views: true render (odd rows) and the model (even rows)",
                            torch.cat(rows), 12)]
        pairs = [(a, b) for a, b in ((0, 1), (1, 2), (2, 3), (3, 0)) if max(a, b) < (self.info.num_types or 0)]
        if pairs:
            walks = [self.interpolate(a, b, 8, math.radians(45), chair_data.ELEVATIONS[1]) for a, b in pairs]
            pictures.append(Picture("chair-interpolation", "walks between two chairs' codes, one view", torch.cat(walks), 8))
        return pictures


def _channels(images: Tensor, channels: int) -> Tensor:
    """RGB renders (n, 3, s, s) in [-1, 1] as the dataset gives them: grey (ITU-R 601 luma) when channels is 1."""
    if channels == 3:
        return images
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)

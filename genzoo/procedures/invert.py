"""Invert: find the latent codes whose decodings best match given images, in a trained model.

For a model with a prior over codes and a decoder (a GAN's generator, a VAE's decoder, GLO), the
images are encoded by optimisation: argmin_z loss(G(z), x), by Adam from `restarts` codes drawn
from the model's prior, with the decoder frozen and the best final code kept per image
(`genzoo.latent.optimise_codes`). This is how GLO encodes a new image (Bojanowski et al. 2018,
Sec. 3) and how a GAN, which has no encoder, is inverted (Creswell & Bharath, "Inverting the
Generator of a Generative Adversarial Network", 2018): how close the reconstruction gets shows how
much of the data the generator can produce at all. The report shows targets beside their
reconstructions, how the loss fell, and the reconstruction error.

    genzoo run invert run=runs/dcgan num_images=8 steps=300
    genzoo run invert run=runs/vae images=photos/ loss=mse
"""

from __future__ import annotations

from typing import Literal

import math

import torch
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt

from safetensors.torch import save_file

from genzoo.config import PathSetting
from genzoo.errors import GenzooError
from genzoo.procedures.base import Procedure, ProcedureConfig, ProcedureContext
from genzoo.registry import PROCEDURES

ImageDistance = Literal["mse", "mae", "laplacian", "perceptual"]


class InvertConfig(ProcedureConfig):
    run: PathSetting  # the trained run folder whose decoder is inverted
    images: PathSetting | None = None  # a folder of images to encode; None: the run's own data
    num_images: PositiveInt = 8  # how many images (the first of the folder, or drawn from the run's data)
    split: Literal["train", "test", "all"] = "test"  # the run's data split the images come from
    steps: PositiveInt = 300  # Adam steps
    lr: PositiveFloat = 0.05
    restarts: PositiveInt = 4  # starting codes per image; the best final code is kept
    loss: ImageDistance | dict[ImageDistance, NonNegativeFloat] = "mse"  # see genzoo.losses.ImageLoss
    ema: bool | None = None  # the run's EMA weights (None: when it has them)
    seed: int = 0


@PROCEDURES.register("invert")
class Invert(Procedure):
    Config = InvertConfig

    def __init__(self, config: InvertConfig) -> None:
        super().__init__(config)
        from genzoo.config import DataConfig, build_config
        from genzoo.data import build_dataset
        from genzoo.latent import latent_space
        from genzoo.loading import load
        from genzoo.losses import ImageLoss
        from genzoo.train.checkpoint import RunFolder

        self.model = load(config.run, ema=config.ema)
        latent_space(self.model)  # a model with no prior over codes cannot be inverted: one sentence here
        info = self.model.info
        if config.images is not None:
            data_config = DataConfig(name="image-folder", root=config.images, image_size=info.image_size, channels=info.channels)
        else:
            data_config = build_config(RunFolder(config.run).read_config()).data.model_copy(update={"split": config.split})
        data = build_dataset(data_config)
        if "image" not in data.keys:
            raise GenzooError(f"the data of {config.run!r} has no single images to encode; give images=FOLDER.")
        count = min(config.num_images, len(data))
        indices = torch.arange(count) if config.images else torch.randperm(len(data), generator=torch.Generator().manual_seed(config.seed))[:count]
        batch = data.batch(indices)
        self.targets = batch["image"]  # (B, C, H, W) in [-1, 1]
        if self.targets.shape[1:] != (info.channels, info.image_size, info.image_size):
            raise GenzooError(f"the images are {tuple(self.targets.shape[1:])} but the model makes "
                              f"{(info.channels, info.image_size, info.image_size)}; give images of that size.")
        self.labels = batch.get("label") if self.model.conditional else None
        weights = {config.loss: 1.0} if isinstance(config.loss, str) else dict(config.loss)
        self.loss = ImageLoss(weights, "fmnist")

    def run(self, context: ProcedureContext) -> None:
        from genzoo.latent import optimise_codes

        config, model = self.config, self.model
        generator = torch.Generator().manual_seed(config.seed)
        start = model.sample_latent(config.restarts * len(self.targets), generator)  # prior samples (R * B, D)
        start = start.view(config.restarts, len(self.targets), -1)  # (R, B, D)
        labels = None if self.labels is None else self.labels.repeat(config.restarts)

        def decode(z: torch.Tensor) -> torch.Tensor:
            return model.decode_latent(z, labels)  # (R * B, C, H, W)

        model.requires_grad_(False)
        codes, final, history = optimise_codes(decode, self.targets, start, lambda images, targets: self.loss(images, targets)[0],
                                               config.steps, config.lr, getattr(model, "project_latent", None),
                                               context.progress, description="inverting")
        for step, value in enumerate(history.tolist(), start=1):
            context.record(step, **{"invert/loss": value})
        with torch.no_grad():
            reconstructions = model.decode_latent(codes, self.labels)  # (B, C, H, W)
            start_images = model.decode_latent(start[0], self.labels)
        pairs = torch.stack([self.targets, start_images, reconstructions], dim=1).flatten(0, 1)  # (3B, C, H, W)
        context.picture("inversions", pairs, "each image, the decoding of its first starting code, and the inversion", columns=6)
        mse = ((reconstructions - self.targets) / 2).square().mean().item()  # images mapped to [0, 1]
        save_file({"codes": codes.contiguous(), "loss": final.contiguous()}, str(context.folder.path / "codes.safetensors"))
        context.result(images=len(self.targets), final_loss=final.mean().item(), mse=mse,
                       psnr=10 * math.log10(1 / mse) if mse > 0 else None, codes="codes.safetensors")

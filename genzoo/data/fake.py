"""Random images for tests and dry runs: blobs of random size, position and brightness.

Not noise: each image is a smooth bump, so a model can learn something in a few steps. The number
of images is data.max_images (default 512); size data.image_size (default 16); channels default 1.
"""

from __future__ import annotations

import torch

from genzoo.config import DataConfig
from genzoo.memory import check_images_fit
from genzoo.data.base import ImageData
from genzoo.registry import DATASETS


@DATASETS.register("fake")
def fake(config: DataConfig) -> ImageData:
    n, size, channels = config.max_images or 512, config.image_size or 16, config.channels or 1
    check_images_fit(n, 4 * channels, size, "the fake images and their float intermediates")
    generator = torch.Generator().manual_seed(1234)
    centre = torch.rand(n, 2, 1, 1, generator=generator) * size  # (N, 2, 1, 1)
    radius = 1.5 + torch.rand(n, 1, 1, generator=generator) * size / 4  # (N, 1, 1)
    colour = 0.3 + 0.7 * torch.rand(n, channels, 1, 1, generator=generator)  # (N, C, 1, 1)
    grid = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")).float()  # (2, H, W)
    distance2 = ((grid[None] - centre) ** 2).sum(1)  # (N, H, W)
    bump = torch.exp(-distance2 / (2 * radius**2))[:, None]  # (N, 1, H, W)
    images = (255 * colour * bump).round().to(torch.uint8)  # (N, C, H, W)
    labels = (radius.flatten() > radius.median()).long()  # big vs small blobs: 2 classes
    return ImageData(images, labels, num_classes=2, source=f"fake: {n} random blobs")

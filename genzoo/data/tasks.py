"""Paired tasks made from any image dataset (`data.task=...`): a = a degraded image, b = the image itself.

So that every user has pairs to learn from (pix2pix, Isola et al. 2017, Sec. 4 lists these uses):
- `edges`: Canny (1986) edges, white on black, of the image's luma (as `edges2fashion`, cached);
- `grey`: the luma (ITU-R 601-2) in every channel, to colourise; needs colour images;
- `superres`: the image reduced 4x (antialiased bicubic) and enlarged back (bicubic): the input of
  super-resolution at the output's size, and its own bicubic baseline;
- `inpaint`: the central square of half the side filled with mid-grey (the centre mask of Pathak et
  al., "Context Encoders", 2016);
- `denoise`: the image plus Gaussian noise of std 0.2 on the [-1, 1] scale (25.5 grey levels), clipped;
  the noise is drawn once from a fixed seed, so the pairs are the same in every run.
The degraded images are made once, at the final size and channels, and kept as uint8 like any images;
`data.direction=BtoA` swaps the sides. Batches `{"a", "b", "index"}`, `info.paired=True`,
`info.domains` = (the task's name for a, the dataset's name).
"""

from __future__ import annotations

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.base import ImageData, convert_channels
from genzoo.data.paired import PairedData, canny_edges
from genzoo.errors import DataError

SIDE_NAMES = {"edges": "edges", "grey": "grey", "superres": "low-res", "inpaint": "masked", "denoise": "noisy"}
SUPERRES_FACTOR = 4
NOISE_STD = 0.2  # on the [-1, 1] scale


def luma(images: Tensor) -> Tensor:
    """(N, C, H, W) uint8 -> (N, 1, H, W) uint8 grey (a grey image is itself)."""
    return convert_channels(images, 1)


def degrade(images: Tensor, task: str) -> Tensor:
    """The task's input for each image: (N, C, H, W) uint8 -> (N, C, H, W) uint8."""
    channels, size = images.shape[1], images.shape[-1]
    if task == "edges":
        return convert_channels(canny_edges(luma(images)), channels)
    if task == "grey":
        return luma(images).expand(-1, channels, -1, -1).contiguous()
    if task == "superres":
        small = max(1, size // SUPERRES_FACTOR)
        low = TF.resize(images.float(), [small, small], interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
        up = TF.resize(low, [size, size], interpolation=TF.InterpolationMode.BICUBIC, antialias=False)
        return up.round().clamp(0, 255).to(torch.uint8)
    if task == "inpaint":
        masked = images.clone()
        start, end = size // 4, size // 4 + size // 2
        masked[..., start:end, start:end] = 128  # mid-grey, 0 on the [-1, 1] scale
        return masked
    # denoise
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(0)) * NOISE_STD * 127.5  # (N, C, H, W)
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


def paired_task(data: ImageData, config: DataConfig) -> PairedData:
    """Pairs (degraded image, image) of every image of `data` for `data.task`."""
    task = config.task
    if task == "grey" and data.images.shape[1] == 1:
        raise DataError(f"data.task=grey (colourisation) needs colour images, and {data.source} is grey; use colour "
                        "images (data.channels=3 only copies the grey) or another task.")
    if task == "edges":
        import importlib.util

        if importlib.util.find_spec("skimage") is None:
            raise DataError("data.task=edges needs scikit-image; run `pip install genzoo[edges]`.")
    images = data.images.cpu()
    source = f"{data.source}, paired as data.task={task} ({SIDE_NAMES[task]} -> image)"
    paired = PairedData(degrade(images, task), images, (SIDE_NAMES[task], config.name), source, data.notes, data.split)
    return paired.oriented(config.direction)

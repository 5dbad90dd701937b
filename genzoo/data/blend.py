"""MNIST-M-style targets for domain adaptation: grey images blended over crops of colour photos.

Ganin et al. ("Domain-Adversarial Training of Neural Networks", JMLR 2016, Sec. 5.2.2) made MNIST-M
"by blending digits from the original set over patches randomly extracted from color photos from
BSDS500": each output pixel, per colour channel, is the absolute difference
    out = |photo_crop - image|      (uint8, the grey image repeated on the 3 channels)
of a random crop of a random photo, as big as the image. BSDS500 is not on this machine, so the
photos are scikit-image's bundled colour photos (`PHOTOS`, public domain / CC0); a crop's photo and
position come from a generator seeded per split (train 0, test 1, all 2), so every build gives the
same images. Labels are the grey images' own. This is *not* MNIST-M: other photos (6 instead of
200), so the textures differ; the recipe and the kind of shift (colour and texture behind the same
shapes) are the paper's.

Datasets: `mnist-m-style` (over `mnist`), `fashion-mnist-m-style` (over `fashion-mnist`);
scikit-image is needed (`pip install genzoo[faces]`).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.base import ImageData
from genzoo.errors import DataError
from genzoo.registry import DATASETS

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
SPLIT_SEEDS = {"train": 0, "test": 1, "all": 2}


@lru_cache(maxsize=1)
def photos() -> tuple[np.ndarray, ...]:
    """scikit-image's colour photos as (H, W, 3) uint8 arrays."""
    if importlib.util.find_spec("skimage") is None:
        raise DataError("the MNIST-M-style datasets need scikit-image's photos; run `pip install genzoo[faces]`.")
    import skimage.data

    return tuple(np.ascontiguousarray(getattr(skimage.data, name)()[..., :3]) for name in PHOTOS)


def blend(images: Tensor, backgrounds: tuple[np.ndarray, ...], seed: int) -> Tensor:
    """Grey images (N, 1, H, W) uint8 -> (N, 3, H, W) uint8: |crop - image| per channel, each over a
    random H x W crop of a random background (H_b, W_b, 3), drawn from a generator seeded with `seed`."""
    n, _, height, width = images.shape
    rng = np.random.default_rng(seed)
    which = rng.integers(len(backgrounds), size=n)  # (N,) a photo per image
    out = np.empty((n, height, width, 3), dtype=np.uint8)
    grey = images[:, 0].numpy().astype(np.int16)  # (N, H, W)
    for k, photo in enumerate(backgrounds):
        members = np.flatnonzero(which == k)  # the images blended over photo k
        top = rng.integers(photo.shape[0] - height + 1, size=len(members))
        left = rng.integers(photo.shape[1] - width + 1, size=len(members))
        rows = top[:, None, None] + np.arange(height)[None, :, None]  # (m, H, 1)
        columns = left[:, None, None] + np.arange(width)[None, None, :]  # (m, 1, W)
        crops = photo[rows, columns].astype(np.int16)  # (m, H, W, 3)
        out[members] = np.abs(crops - grey[members][..., None]).astype(np.uint8)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)


def _blended(base: str, config: DataConfig) -> ImageData:
    data = DATASETS.get(base)(config)
    if data.images.shape[1] != 1:
        raise DataError(f"the -m-style datasets blend grey images, and {data.source} is not grey; use mnist or fashion-mnist.")
    images = blend(data.images, photos(), SPLIT_SEEDS[config.split])
    return ImageData(images, data.labels, num_classes=data.num_classes, notes=data.notes, class_names=data.class_names,
                     split=data.split, source=f"{data.source}, blended over crops of {len(PHOTOS)} scikit-image photos (MNIST-M recipe)")


@DATASETS.register("mnist-m-style")
def mnist_m_style(config: DataConfig) -> ImageData:
    """MNIST digits blended over crops of colour photos, Ganin et al.'s MNIST-M recipe (other photos)."""
    return _blended("mnist", config)


@DATASETS.register("fashion-mnist-m-style")
def fashion_mnist_m_style(config: DataConfig) -> ImageData:
    """Fashion-MNIST blended over crops of colour photos, Ganin et al.'s MNIST-M recipe."""
    return _blended("fashion-mnist", config)

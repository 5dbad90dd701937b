"""A small face dataset that works offline: scikit-image's `lfw_subset`.

`skimage.data.lfw_subset()` holds 200 grey 25 x 25 crops from Labeled Faces in the Wild (Huang et
al. 2007): the first 100 are faces, the last 100 are non-face patches of the same photos, as used in
scikit-image's face-detection example. Labels: 0 = face, 1 = non-face (so `data.domains=[face,
non-face]` works, and `data.max_images=100` keeps only faces). The crops are resized to 32 x 32 (a
size the convolution stacks take) unless data.image_size says otherwise. Needs scikit-image
(`pip install scikit-image`); it ships the file, nothing is downloaded.
"""

from __future__ import annotations

import torch

from genzoo.config import DataConfig
from genzoo.data.base import ImageData, resize_crop
from genzoo.errors import DataError
from genzoo.registry import DATASETS

CLASSES = ("face", "non-face")


@DATASETS.register("lfw-subset")
def lfw_subset(config: DataConfig) -> ImageData:
    """200 grey 25 x 25 crops from LFW, 100 faces and 100 non-faces (scikit-image, offline); shown at 32 px."""
    try:
        from skimage.data import lfw_subset as load
    except ImportError:
        raise DataError("the lfw-subset dataset needs scikit-image; run `pip install scikit-image`.") from None
    pixels = torch.from_numpy(load()).mul(255).round().to(torch.uint8)[:, None]  # (200, 1, 25, 25)
    images = resize_crop(pixels, 32) if config.image_size is None else pixels
    labels = torch.arange(len(images)) // 100  # 0: face, 1: non-face
    return ImageData(images, labels, num_classes=2, class_names=list(CLASSES),
                     source="scikit-image lfw_subset (100 faces, 100 non-faces)")

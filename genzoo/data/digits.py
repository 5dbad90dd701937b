"""UCI optical digits (Alpaydin & Kaynak 1998): 1,797 8 x 8 grey digits, from scikit-learn.

scikit-learn is an optional dependency (`pip install genzoo[digits]`). Pixel values 0..16 are
scaled to 0..255. DCGAN-style models need at least 28 px: set data.image_size (e.g. 32).
"""

from __future__ import annotations

import torch

from genzoo.config import DataConfig
from genzoo.data.base import ImageData
from genzoo.errors import DataError
from genzoo.registry import DATASETS


@DATASETS.register("digits")
def digits(config: DataConfig) -> ImageData:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the digits dataset needs scikit-learn; run `pip install scikit-learn`.") from None
    bunch = load_digits()
    images = torch.from_numpy(bunch.images * (255.0 / 16.0)).round().to(torch.uint8)[:, None]  # (1797, 1, 8, 8)
    labels = torch.from_numpy(bunch.target).long()  # (1797,)
    return ImageData(images, labels, num_classes=10, source="UCI optical digits (scikit-learn)")

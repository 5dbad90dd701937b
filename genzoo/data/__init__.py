"""Datasets yielding dict batches with images in [-1, 1]. Each module registers one dataset."""

from __future__ import annotations

from genzoo.config import DataConfig
from genzoo.data import digits, fake, fashion_mnist, image_folder, toy  # noqa: F401  (registers the datasets)
from genzoo.data.base import BatchStream, ImageData, conform
from genzoo.registry import DATASETS


def build_dataset(config: DataConfig) -> ImageData:
    """Load the configured dataset into memory, then apply size, channel and count settings."""
    return conform(DATASETS.get(config.name)(config), config)


__all__ = ["BatchStream", "ImageData", "build_dataset"]

"""Datasets yielding dict batches with images in [-1, 1]. Each module registers one dataset."""

from __future__ import annotations

from genzoo.config import DataConfig
from genzoo.data import digits, faces, fake, fashion_mnist, image_folder, toy  # noqa: F401  (registers the datasets)
from genzoo.data import captions, shapes  # noqa: F401  (captioned datasets: fashion-mnist-captions, shapes)
from genzoo.data.base import BatchStream, DomainData, ImageData, conform, split_domains
from genzoo.registry import DATASETS


def build_dataset(config: DataConfig) -> ImageData:
    """Load the configured dataset into memory, then apply size, channel and count settings, and
    split it into two domains when `data.domains` names two of its classes."""
    data = conform(DATASETS.get(config.name)(config), config)
    return split_domains(data, config.domains) if config.domains is not None else data


__all__ = ["BatchStream", "DomainData", "ImageData", "build_dataset"]

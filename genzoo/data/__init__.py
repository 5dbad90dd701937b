"""Datasets yielding dict batches: images in [-1, 1], image pairs, source/target images, text
tokens. Each module registers its datasets; `build_dataset` turns a `DataConfig` into one."""

from __future__ import annotations

from genzoo.config import DataConfig
from genzoo.data import digits, faces, fake, fashion_mnist, image_folder, paired, text, toy  # noqa: F401  (registers the datasets)
from genzoo.data.base import BatchStream, Dataset, DomainData, ImageData, conform, split_domains
from genzoo.data.paired import PairedData
from genzoo.data.text import TextData
from genzoo.errors import DataError
from genzoo.registry import DATASETS


def build_dataset(config: DataConfig) -> Dataset:
    """Load the configured dataset into memory; image datasets then get the size, channel and count
    settings, and become two domains when `data.domains` names two of their classes."""
    data = DATASETS.get(config.name)(config)
    if not isinstance(data, ImageData):
        if config.domains is not None:
            raise DataError(f"data.domains splits a labelled image dataset into two domains, which dataset "
                            f"{config.name!r} is not; leave data.domains unset.")
        return data
    data = conform(data, config)
    return split_domains(data, config.domains) if config.domains is not None else data


__all__ = ["BatchStream", "Dataset", "DomainData", "ImageData", "PairedData", "TextData", "build_dataset"]

"""Datasets yielding dict batches: images in [-1, 1], image pairs, source/target images, text
tokens. Each module registers its datasets; `build_dataset` turns a `DataConfig` into one."""

from __future__ import annotations

from genzoo.config import DataConfig
from genzoo.data import (  # noqa: F401  (registers the datasets)
    blend, calo, captions, chairs, digits, faces, fake, fashion_mnist, image_folder, jets, mnist, paired, rays, shapes,
    text, toy,
)
from genzoo.data.adaptation import SourceTargetData, target_config
from genzoo.data.base import BatchStream, Dataset, DomainData, ImageData, conform, keep_classes, split_domains
from genzoo.data.paired import PairedData
from genzoo.data.tasks import paired_task
from genzoo.data.text import TextData
from genzoo.errors import DataError
from genzoo.registry import DATASETS


def build_dataset(config: DataConfig) -> Dataset:
    """Load the configured dataset into memory; image datasets then get the size, channel and count
    settings, become two domains when `data.domains` names two of their classes, or the labelled
    source beside `data.target`'s unlabelled images."""
    if config.domains is not None and config.target is not None:
        raise DataError("data.domains (two domains of one dataset) and data.target (domain adaptation) do not go "
                        "together; set one of them.")
    if config.task is not None and (config.domains is not None or config.target is not None):
        raise DataError(f"data.task makes pairs of one dataset's images, which data.{'domains' if config.domains else 'target'} "
                        "does not go with; set one of them.")
    data = DATASETS.get(config.name)(config)
    if not isinstance(data, ImageData):
        keys = ("domains", "target", "classes", "task") + (("image_size", "channels") if isinstance(data, TextData) else ())
        for key in keys:
            if getattr(config, key) is not None:
                raise DataError(f"data.{key} means nothing for dataset {config.name!r} (it is not a labelled image "
                                f"dataset); leave data.{key} unset.")
        return data
    data = conform(data, config)
    if config.classes is not None:
        data = keep_classes(data, config.classes)
    if config.task is not None:
        return paired_task(data, config)
    if config.domains is not None:
        return split_domains(data, config.domains)
    if config.target is not None:
        return SourceTargetData(data, _target(target_config(config, data.info)))
    return data


def _target(config: DataConfig) -> ImageData:
    target = DATASETS.get(config.name)(config)
    if not isinstance(target, ImageData):
        raise DataError(f"data.target must be an image dataset, which {config.name!r} is not; "
                        "give an image dataset such as digits or image-folder.")
    return conform(target, config)


__all__ = ["BatchStream", "Dataset", "DomainData", "ImageData", "PairedData", "SourceTargetData", "TextData",
           "build_dataset", "target_config"]

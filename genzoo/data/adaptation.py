"""Domain adaptation data: a labelled source and an unlabelled target (`data.target`).

The source is the dataset `data.name` with all of data's settings; the target is `data.target`
(a dataset name, or name, root, split, download, max_images) resized and converted to the
source's image size and channels, so that both sides of a batch match. Batches are
`{"source": (B, C, H, W), "source_label": (B,), "target": (B, C, H, W)}` in [-1, 1]: the target's
labels never enter a training batch. They stay available to evaluation: `target_labels`, and
`target_dataset()`, the labelled target as a dataset of its own (for target accuracy and the
"oracle" trained on target labels); `target_config` gives the same target as a `DataConfig`.
One epoch covers the larger side; the smaller one repeats, its item for index i chosen through a
fixed permutation (as `DomainData` pairs two domains), so a resumed run draws the same batches.
`info.num_classes` and `class_names` are the source's; `info.domains` is ("source", "target").
"""

from __future__ import annotations

import torch
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.base import ImageData
from genzoo.data.info import DataInfo
from genzoo.errors import DataError


class SourceTargetData:
    def __init__(self, source: ImageData, target: ImageData) -> None:
        if source.labels is None:
            raise DataError(f"data.target needs a labelled source, but {source.source} has no labels; use a labelled "
                            "dataset (e.g. fashion-mnist, or class sub-folders) as data.name.")
        self.source_data, self.target_data = source, target
        self.pairing = torch.randperm(max(len(source), len(target)), generator=torch.Generator().manual_seed(0))
        self.source = (f"source {source.source} ({len(source)} images, labelled); target {target.source} "
                       f"({len(target)} images, labels kept for evaluation only)")
        self.notes = [*source.notes, *target.notes]
        if target.labels is not None:  # the run says unlabelled: warn, and never put the labels in a batch
            self.notes.append(f"the target {target.source} carries labels, and this run treats it as unlabelled: "
                              "training never reads them (a batch holds the target's images only); "
                              "`genzoo eval --metrics accuracy` uses them to score the target.")
        if target.num_classes is not None and target.num_classes != source.num_classes:
            self.notes.append(f"the target has {target.num_classes} classes and the source {source.num_classes}; "
                              "accuracy on the target compares label values as they are.")

    @property
    def keys(self) -> tuple[str, ...]:
        return ("source", "source_label", "target")

    @property
    def info(self) -> DataInfo:
        source = self.source_data.info
        return DataInfo(channels=source.channels, image_size=source.image_size, num_classes=source.num_classes,
                        num_images=len(self), class_names=source.class_names, domains=("source", "target"),
                        paired=False)

    @property
    def split(self) -> str | None:
        """The split both sides really are (what `genzoo eval --split` checks); None when they differ or have none."""
        source, target = getattr(self.source_data, "split", None), getattr(self.target_data, "split", None)
        return source if source == target else None

    @property
    def target_labels(self) -> Tensor | None:
        """The target's labels (N_target,) int64, for evaluation only; None when the target has none."""
        return self.target_data.labels

    def target_dataset(self) -> ImageData:
        """The target as a dataset of its own, with its labels: batches {"image", "label", "index"}."""
        return self.target_data

    @property
    def device(self) -> torch.device:
        return self.source_data.device

    def __len__(self) -> int:
        return max(len(self.source_data), len(self.target_data))

    def to(self, device: torch.device | str) -> SourceTargetData:
        self.source_data.to(device)
        self.target_data.to(device)
        self.pairing = self.pairing.to(device)
        return self

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        source = indices % len(self.source_data)  # (B,) each source image once an epoch when it is the larger side
        target = self.pairing[indices] % len(self.target_data)  # (B,) the target through a fixed permutation
        images = self.source_data.images[source].float() / 127.5 - 1.0  # uint8 -> [-1, 1]
        return {"source": images, "source_label": self.source_data.labels[source],
                "target": self.target_data.images[target].float() / 127.5 - 1.0}


def target_config(config: DataConfig, source: DataInfo) -> DataConfig:
    """`data.target` as a DataConfig of its own, at the source's image size and channels."""
    target = config.target
    if target is None:
        raise DataError("this run has no data.target; set data.target=NAME (a second image dataset).")
    if source.channels not in (1, 3) or source.image_size is None:
        raise DataError(f"data.target needs an image dataset as the source, which {config.name!r} is not; "
                        "use an image dataset as data.name.")
    return DataConfig(name=target.name, root=target.root, split=target.split, download=target.download,
                      max_images=target.max_images, image_size=source.image_size, channels=source.channels)

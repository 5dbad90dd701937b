"""Paired images, where a[i] and b[i] show the same thing (pix2pix): `paired-folder` and `edges2fashion`.

`paired-folder` reads both layouts of the pytorch-CycleGAN-and-pix2pix repository (Isola et al. 2017):
- *aligned*: each image holds A and B side by side (A|B); A is the left half, columns [0, floor(W/2)),
  B the rest, as the repository's AlignedDataset cuts them;
- *two folders* `A/` and `B/` under `data.root`, whose images have the same relative paths (the
  extension may differ: `A/x.png` pairs with `B/x.jpg`); an image without a partner stops the run
  with a few of the names. `A/train` and `B/train` (the input of the repository's
  combine_A_and_B.py) work too.
`data.split=train` reads the sub-folder `train/` when there is one, `test` reads `test/` (or else
`val/`), `all` the whole folder; without such sub-folders every split is the whole folder (a note
says so for test). Each side is decoded as image-folder decodes (grey, RGB, RGBA, palette, 16-bit),
resized so that its shorter side is `data.image_size` (default 64) and centre-cropped; `data.channels`
(default RGB unless every image is grey) holds for both sides. `data.max_images` keeps the first N
pairs (sorted by path).

`edges2fashion`: Fashion-MNIST (genzoo's loader: data.root, $GENZOO_DATA, the Debian package, or
the embedded 10,000 test images, so it works offline) paired with the Canny (1986) edges of each
image: a = edges (white on black), b = the image. Edges are found at the final size with
scikit-image's `feature.canny` on pixels in [0, 1], sigma = size / 28 and hysteresis thresholds
(0.1, 0.2) x 28 / size (scikit-image's defaults at 28 px, scaled so that an enlarged image gives the
same outlines). That takes about 1 ms per 28 x 28 image, so the edges are cached under
$GENZOO_CACHE/data (default ~/.cache/genzoo/data), keyed by a hash of the images and the settings.

`data.direction=BtoA` swaps the two sides: a is always what a translation reads, b what it should
make. Batches `{"a": (B, C, H, W), "b": (B, C, H, W), "index": (B,)}` in [-1, 1]; `info.paired` is
True and `info.domains` names the sides (("A", "B"), ("edges", "fashion"), or swapped).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.progress import track
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.base import conform, convert_channels, resize_crop
from genzoo.data.fashion_mnist import fashion_mnist
from genzoo.data.image_folder import find_images, is_grey, open_image, pixels
from genzoo.data.info import DataInfo
from genzoo.errors import DataError, GenzooError
from genzoo.io import atomic_write, cache_root
from genzoo.registry import DATASETS

SPLIT_FOLDERS = {"train": ("train",), "test": ("test", "val"), "all": ()}
CANNY_AT_28 = (1.0, 0.1, 0.2)  # sigma, low and high threshold of the edges of a 28 x 28 image


@dataclass
class PairedData:
    images_a: Tensor  # (N, C, H, W) uint8: what a translation reads
    images_b: Tensor  # (N, C, H, W) uint8: what it should make of images_a[i]
    names: tuple[str, str]  # the sides' names, for info.domains
    source: str = ""
    notes: list[str] = field(default_factory=list)
    split: str | None = None  # the split these pairs really are; None: the data has no splits

    def __post_init__(self) -> None:
        if len(self.images_a) == 0:
            raise DataError(f"no image pairs found in {self.source}; point data.root at a folder that has some.")
        assert self.images_a.shape == self.images_b.shape, (self.images_a.shape, self.images_b.shape)

    @property
    def keys(self) -> tuple[str, ...]:
        return ("a", "b", "index")

    @property
    def info(self) -> DataInfo:
        return DataInfo(channels=self.images_a.shape[1], image_size=self.images_a.shape[-1], num_images=len(self),
                        domains=self.names, paired=True)

    @property
    def device(self) -> torch.device:
        return self.images_a.device

    def __len__(self) -> int:
        return len(self.images_a)

    def to(self, device: torch.device | str) -> PairedData:
        self.images_a, self.images_b = self.images_a.to(device), self.images_b.to(device)
        return self

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        return {"a": self.images_a[indices].float() / 127.5 - 1.0,  # uint8 -> [-1, 1]
                "b": self.images_b[indices].float() / 127.5 - 1.0, "index": indices}

    def oriented(self, direction: str) -> PairedData:
        """The same pairs with the sides swapped for direction BtoA."""
        if direction == "BtoA":
            self.images_a, self.images_b = self.images_b, self.images_a
            self.names = (self.names[1], self.names[0])
            self.source += ", direction BtoA"
        return self


# ----------------------------------------------------------------------------- paired-folder

def _split_folder(folder: Path, split: str) -> Path:
    return next((folder / name for name in SPLIT_FOLDERS[split] if (folder / name).is_dir()), folder)


def _by_stem(folder: Path) -> dict[str, Path]:
    """The images under `folder` by relative path without extension."""
    images: dict[str, Path] = {}
    for path in find_images(folder):
        stem = path.relative_to(folder).with_suffix("").as_posix()
        if stem in images:
            raise DataError(f"{str(folder)!r} has two images named {stem!r} ({images[stem].name}, {path.name}); "
                            "keep one of them.")
        images[stem] = path
    return images


def _two_folders(folder_a: Path, folder_b: Path) -> list[tuple[Path, Path]]:
    a, b = _by_stem(folder_a), _by_stem(folder_b)
    only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    if only_a or only_b:
        unmatched = [f"{len(names)} in {folder} without a partner ({', '.join(names[:3])}{', ...' * (len(names) > 3)})"
                     for names, folder in ((only_a, folder_a), (only_b, folder_b)) if names]
        raise DataError(f"paired folders need the same file names in A/ and B/, but there are "
                        f"{' and '.join(unmatched)}; remove or rename them.")
    return [(a[stem], b[stem]) for stem in sorted(a)]


def _halves(image: Tensor, path: Path) -> tuple[Tensor, Tensor]:
    """An aligned A|B image (1, C, H, W) cut into its left and right halves."""
    half = image.shape[-1] // 2
    if half == 0:
        raise DataError(f"image {str(path)!r} is {image.shape[-1]} pixel wide, too narrow to hold A and B side by "
                        "side; remove it, or use folders A/ and B/.")
    return image[..., :half], image[..., half:]


@DATASETS.register("paired-folder")
def paired_folder(config: DataConfig) -> PairedData:
    """Image pairs: pix2pix's aligned A|B images, or folders A/ and B/ with the same file names."""
    if config.root is None:
        raise DataError("the paired-folder dataset needs a folder: set data.root=PATH (or --data-root PATH).")
    root = Path(config.root).expanduser()
    if root.exists() and not root.is_dir():
        raise DataError(f"image folder {str(root)!r} is a file, not a folder; give the folder that holds the pairs.")
    folder = _split_folder(root, config.split)  # root/train, or root itself
    if (folder / "A").is_dir() and (folder / "B").is_dir():
        folder_a, folder_b = _split_folder(folder / "A", config.split), _split_folder(folder / "B", config.split)
        pairs, aligned = _two_folders(folder_a, folder_b), False
    else:
        folder_a = folder_b = folder
        pairs, aligned = [(path, path) for path in find_images(folder)], True  # one file holds both
    notes = []
    if config.split == "test" and not {folder.name, folder_a.name} & set(SPLIT_FOLDERS["test"]):
        notes.append(f"{root} has no test/ or val/ sub-folder; split 'test' reads all of its pairs.")
    pairs = pairs[: config.max_images]
    files = [a for a, _ in pairs] if aligned else [path for pair in pairs for path in pair]
    with closing(track(files, description="decoding image pairs", transient=True)) as paths:
        opened = dict(zip(files, (open_image(path) for path in paths)))
    channels = config.channels or (1 if all(map(is_grey, opened.values())) else 3)
    size = config.image_size or 64
    sides: tuple[list[Tensor], list[Tensor]] = ([], [])
    for path_a, path_b in pairs:
        if aligned:
            a, b = _halves(pixels(opened[path_a], channels), path_a)
        else:
            a, b = pixels(opened[path_a], channels), pixels(opened[path_b], channels)
        sides[0].append(resize_crop(a, size))  # (1, C, s, s)
        sides[1].append(resize_crop(b, size))
    layout = "aligned A|B images" if aligned else "pairs from folders A/ and B/"
    where = folder if aligned else f"{folder_a} and {folder_b}"
    found = bool({folder.name, folder_a.name} & set(SPLIT_FOLDERS[config.split]))  # a train/, test/ or val/ sub-folder
    data = PairedData(torch.cat(sides[0]), torch.cat(sides[1]), ("A", "B"), f"{len(pairs)} {layout} in {where}", notes,
                      config.split if found else None)
    return data.oriented(config.direction)


# ----------------------------------------------------------------------------- edges2fashion

def _cache_folder() -> Path:
    return cache_root() / "data"


def canny_edges(images: Tensor) -> Tensor:
    """Canny edges of grey images (N, 1, S, S) uint8 as (N, 1, S, S) uint8 in {0, 255}, cached on disk."""
    size = images.shape[-1]
    sigma, low, high = CANNY_AT_28[0] * size / 28, CANNY_AT_28[1] * 28 / size, CANNY_AT_28[2] * 28 / size
    version = importlib.metadata.version("scikit-image")
    digest = hashlib.sha256(f"{tuple(images.shape)} {sigma} {low} {high} {version}".encode())
    digest.update(images.contiguous().numpy().tobytes())
    path = _cache_folder() / f"edges-{digest.hexdigest()[:24]}.npy"
    count = images.shape[0] * size * size
    if path.is_file():
        try:
            packed = np.load(path)
            edges = np.unpackbits(packed, count=count).reshape(images.shape).astype(bool)
            return torch.from_numpy(edges).to(torch.uint8) * 255
        except (OSError, ValueError):  # a damaged cache file is recomputed
            pass
    from skimage.feature import canny  # imports scipy's image modules: seconds, so only when needed

    grey = images[:, 0].numpy() / 255.0  # (N, S, S) in [0, 1]
    edges = np.stack([canny(image, sigma=sigma, low_threshold=low, high_threshold=high)
                      for image in track(grey, description="finding edges (cached afterwards)", transient=True)])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)

        def write(temporary: Path) -> None:
            with open(temporary, "wb") as handle:
                np.save(handle, np.packbits(edges))

        atomic_write(path, write)
    except (OSError, GenzooError):
        pass  # an unwritable cache only costs time
    return torch.from_numpy(edges[:, None]).to(torch.uint8) * 255  # (N, 1, S, S)


@DATASETS.register("edges2fashion")
def edges2fashion(config: DataConfig) -> PairedData:
    """Fashion-MNIST images paired with their Canny edges (offline; scikit-image): a = edges, b = image."""
    if importlib.util.find_spec("skimage") is None:
        raise DataError("the edges2fashion dataset needs scikit-image; run `pip install genzoo[edges]`.") from None
    photos = conform(fashion_mnist(config), config.model_copy(update={"channels": 1}))  # grey at the final size
    edges = canny_edges(photos.images)
    size = photos.images.shape[-1]
    source = f"edges2fashion: {len(edges)} images of {photos.source} with their Canny edges at {size} px"
    data = PairedData(convert_channels(edges, config.channels), convert_channels(photos.images, config.channels),
                      ("edges", "fashion"), source, photos.notes, photos.split)
    return data.oriented(config.direction)

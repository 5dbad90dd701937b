"""Folders of images for `genzoo eval --real DIR --fake DIR`, read through one of two pipelines.

- `pytorch-fid` (the default for `--extractor inception`): each file is read with PIL and converted
  to RGB at its own size, as pytorch-fid's `ImagePathDataset` does, and scaled to [0, 1]; the
  feature network's own resize then brings it to its input. For Inception that is pytorch-fid's
  `InceptionV3(resize_input=True)`: bilinear to 299 x 299 with `align_corners=False`, no
  antialiasing and no crop, so a 64 x 48 image is stretched, not cropped. Images of several sizes
  are each resized that way before they are batched (the network's resize is then the identity).
  16-bit images are first scaled to 8 bits (PIL would clip them), as genzoo's image-folder does.
- `crop` (the default for `--extractor fmnist`): genzoo's `image-folder` dataset, the shorter side
  resized to the network's input size with antialiased bilinear interpolation in uint8, then a
  centre crop (the resize of clean-fid's spirit, not its exact filter).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import numpy as np
import torch
from rich.progress import track
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data import build_dataset
from genzoo.data.base import ImageData
from genzoo.data.image_folder import to_8bit, find_images, open_image
from genzoo.errors import GenzooError
from genzoo.metrics.features import FeatureNetwork

FOLDER_RESIZE = ("pytorch-fid", "crop")
DEFAULT_FOLDER_RESIZE = {"inception": "pytorch-fid"}  # any other feature network: "crop"


class FolderImages:
    """Images of one folder, each kept at its own size as uint8 RGB (3, H, W); `batch` gives them in [-1, 1],
    brought to `size` x `size` by `resize` (the feature network's own resize) where their size differs."""

    labels = None
    num_classes = None

    def __init__(self, root: Path, size: int, resize: Callable[[Tensor, int], Tensor]) -> None:
        files = find_images(root)
        with closing(track(files, description="decoding images", transient=True)) as paths:
            self.images = [_read_rgb(path) for path in paths]  # (3, H, W) uint8 each
        self.size, self.resize = size, resize
        self.source = f"{len(files)} images from {root}"
        self.notes: list[str] = []

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        out = torch.empty(len(indices), 3, self.size, self.size)  # (B, 3, s, s)
        chosen = [self.images[i] for i in indices.tolist()]
        for shape in {image.shape for image in chosen}:
            where = [p for p, image in enumerate(chosen) if image.shape == shape]
            images = torch.stack([chosen[p] for p in where]).float() / 127.5 - 1  # (b, 3, H, W) in [-1, 1]
            out[where] = images if shape[1:] == (self.size, self.size) else self.resize(images, self.size)
        return {"image": out, "index": indices}


def _read_rgb(path: Path) -> Tensor:
    image = to_8bit(open_image(path)).convert("RGB")
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()  # (3, H, W)


def load_folder(folder: str | Path, network: FeatureNetwork, pipeline: str) -> tuple[ImageData | FolderImages, str]:
    """The images of `folder` for `network` through `pipeline`, and a sentence for the protocol that says how."""
    if pipeline not in FOLDER_RESIZE:
        raise GenzooError(f"--folder-resize {pipeline!r} is not a folder pipeline; choose one of: {', '.join(FOLDER_RESIZE)}.")
    root = Path(folder).expanduser().resolve()
    if pipeline == "pytorch-fid":
        description = (f"pytorch-fid: each file read with PIL as RGB at its own size, scaled to [0, 1], then the "
                       f"{network.name} network's resize ({network.resize}); no crop")
        return FolderImages(root, network.input_size, network.resize_images), description
    config = DataConfig(name="image-folder", root=str(root), image_size=network.input_size, channels=network.channels)
    description = (f"crop: each file read with PIL as {'grey' if network.channels == 1 else 'RGB'}, shorter side to "
                   f"{network.input_size} (antialiased bilinear, in uint8), centre crop")
    return build_dataset(config), description

"""`chairs`: procedurally rendered chairs, every factor known (type, class, view), for every image family.

After the rendered chairs of Dosovitskiy, Springenberg & Brox, "Learning to Generate Chairs with
Convolutional Neural Networks" (CVPR 2015), who rendered 809 chair models of Aubry et al. from 62
views (31 azimuths x 2 elevations): here chair k of the collection is a type vector drawn from
(CHAIR_SEED, k) (`genzoo.data.chair_render`), seen from AZIMUTHS azimuths x the ELEVATIONS, on white,
in RGB. The `train` split has azimuths 0, 15, ..., 345 degrees; `test` the same chairs at the unseen
azimuths halfway between (7.5, 22.5, ...); `all` both. data.max_images is the number of images
(default 19,200 = 400 chairs x 48 views), chair-major: image i is chair i // V at view i % V of the
split's V views. data.image_size: 32 by default (any size; the image families need 28, 32, 64 ...).

Batches: `image` (B, 3, H, W) in [-1, 1], `label` the chair's class (stool, chair, armchair, swivel
chair), `index`, and the factors: `type` (B, TYPE_DIM) the chair's type vector, `chair` (B,) its
number in the collection, `view` (B, 4) = (sin az, cos az, sin el, cos el), `mask` (B, 1, H, W) in
[0, 1] (the fraction of each pixel the chair covers). Rendering 20,000 images at 32 px takes about a
minute on 2 CPU cores; they are cached under $GENZOO_CACHE (or ~/.cache/genzoo)/data, keyed by the
renderer's version, the split, size and count, and re-rendered if the cached file is damaged.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch
from rich.progress import track
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.base import ImageData
from genzoo.data.cameras import focal_length, orbit_poses
from genzoo.data.chair_render import CLASSES, TYPE_DIM, chair_types, render, type_class
from genzoo.data.info import DataInfo
from genzoo.io import cache_root
from genzoo.registry import DATASETS

RENDERER_VERSION = 1  # bump when the renderer's pictures change: the cache keys change with it
CHAIR_SEED = 0
AZIMUTHS = 24  # per elevation: every 15 degrees
ELEVATIONS = (math.radians(20), math.radians(30))  # as the chairs of Dosovitskiy et al.
DISTANCE, TARGET, FOV = 3.0, (0.0, 0.0, 0.5), math.radians(30)  # the camera orbit and its horizontal field of view
DEFAULT_SIZE, DEFAULT_CHAIRS = 32, 400
BLOCK = 1024  # images rendered per progress step


def split_views(split: str) -> tuple[Tensor, Tensor]:
    """Azimuths and elevations (V,) of the views of a split: train on the 15-degree grid, test halfway between."""
    step = 2 * math.pi / AZIMUTHS
    offsets = {"train": [0.0], "test": [0.5], "all": [0.0, 0.5]}[split]
    azimuth = torch.tensor([(k + o) * step for k in range(AZIMUTHS) for o in offsets])  # (A,)
    elevation = torch.tensor(ELEVATIONS)  # (E,)
    return azimuth.repeat(len(elevation)), elevation.repeat_interleave(len(azimuth))  # (A E,) each


def view_code(azimuth: Tensor, elevation: Tensor) -> Tensor:
    """The view as the network sees it: (B, 4) = (sin az, cos az, sin el, cos el)."""
    azimuth, elevation = torch.as_tensor(azimuth).float(), torch.as_tensor(elevation).float()
    return torch.stack([azimuth.sin(), azimuth.cos(), elevation.sin(), elevation.cos()], -1)


def render_views(types: Tensor, azimuth: Tensor, elevation: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """The true renders of chairs `types` (n, TYPE_DIM) at views (n,) each: images (n, 3, s, s) in [-1, 1]
    and masks (n, 1, s, s) in [0, 1]."""
    poses = orbit_poses(azimuth, elevation, DISTANCE, TARGET)
    images, masks = render(types.float().cpu(), poses, size, focal_length(size, FOV))
    return images * 2 - 1, masks


class ChairsData(ImageData):
    """Rendered chair images with their factors (see the module docstring)."""

    def __init__(self, images: Tensor, masks: Tensor, types: Tensor, chairs: Tensor, views: Tensor, source: str) -> None:
        super().__init__(images, type_class(types), len(CLASSES), source=source, class_names=list(CLASSES))
        self.masks, self.types, self.chairs, self.views = masks, types, chairs, views  # (N, 1, H, W) uint8, (N, T), (N,), (N, 4)

    @property
    def keys(self) -> tuple[str, ...]:
        return ("image", "index", "label", "type", "chair", "view", "mask")

    @property
    def info(self) -> DataInfo:
        return DataInfo(channels=self.images.shape[1], image_size=self.images.shape[-1], num_classes=self.num_classes,
                        num_images=len(self), class_names=tuple(CLASSES), num_types=int(self.chairs.max()) + 1,
                        type_dim=TYPE_DIM)

    def to(self, device: torch.device | str) -> ChairsData:
        super().to(device)
        self.masks, self.types, self.chairs, self.views = (t.to(device) for t in (self.masks, self.types, self.chairs, self.views))
        return self

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        batch = super().batch(indices)
        batch.update(type=self.types[indices], chair=self.chairs[indices], view=self.views[indices],
                     mask=self.masks[indices].float() / 255)
        return batch


def _cache_path(key: dict) -> Path:
    root = cache_root() / "data"
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return root / f"chairs-{digest}.safetensors"


def _render_all(types: Tensor, azimuth: Tensor, elevation: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """uint8 images (N, 3, s, s) and masks (N, 1, s, s), rendered in blocks with a progress bar."""
    images, masks = [], []
    starts = range(0, len(types), BLOCK)
    for start in track(starts, description=f"rendering {len(types):,} chairs", transient=True, disable=len(starts) < 4):
        block = slice(start, start + BLOCK)
        image, mask = render_views(types[block], azimuth[block], elevation[block], size)
        images.append(((image + 1) * 127.5).round().clamp(0, 255).to(torch.uint8))
        masks.append((mask * 255).round().to(torch.uint8))
    return torch.cat(images).contiguous(), torch.cat(masks).contiguous()


def _load_or_render(key: dict, types: Tensor, azimuth: Tensor, elevation: Tensor, size: int) -> tuple[Tensor, Tensor]:
    from safetensors.torch import load_file, save_file

    from genzoo.io import atomic_write

    path = _cache_path(key)
    if path.is_file():
        try:
            saved = load_file(str(path))
            if saved["images"].shape == (len(types), 3, size, size) and saved["masks"].shape == (len(types), 1, size, size):
                return saved["images"], saved["masks"]
        except Exception:  # noqa: BLE001  (a damaged cache file is rendered again)
            pass
    images, masks = _render_all(types, azimuth, elevation, size)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: save_file({"images": images, "masks": masks}, str(tmp),
                                                 metadata={"key": json.dumps(key, sort_keys=True)}))
    except Exception:  # noqa: BLE001  (an unwritable cache only costs time)
        pass
    return images, masks


@DATASETS.register("chairs")
def chairs(config: DataConfig) -> ChairsData:
    """Rendered chairs (type, class, view and mask known), 32 px RGB; 400 chairs x 48 views by default."""
    size = config.image_size or DEFAULT_SIZE
    view_azimuth, view_elevation = split_views(config.split)
    views = len(view_azimuth)
    count = config.max_images or DEFAULT_CHAIRS * AZIMUTHS * len(ELEVATIONS)
    index = torch.arange(count)
    chairs, view = index // views, index % views  # (N,) each: chair-major
    types = chair_types(CHAIR_SEED, range(int(chairs[-1]) + 1))[chairs]  # (N, T)
    azimuth, elevation = view_azimuth[view], view_elevation[view]
    key = {"renderer": RENDERER_VERSION, "seed": CHAIR_SEED, "split": config.split, "size": size, "count": count,
           "azimuths": AZIMUTHS, "elevations": ELEVATIONS, "camera": [DISTANCE, TARGET, FOV]}
    images, masks = _load_or_render(key, types, azimuth, elevation, size)
    source = f"chairs: {count:,} renders of {int(chairs[-1]) + 1} chairs, {views} {config.split} views, {size} px"
    data = ChairsData(images, masks, types, chairs, view_code(azimuth, elevation), source)
    data.split = config.split
    return data

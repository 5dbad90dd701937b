"""2-D Gaussian mixtures for mode-collapse experiments: 8 modes on a ring, 25 on a grid.

The standard toys of Metz et al., "Unrolled GANs" (2017), Sec. 3.1 (8 Gaussians on a ring of
radius 2, std 0.02) and Srivastava et al., "VEEGAN" (2017), Sec. 5.1 (the ring, and 25 Gaussians
on a 5 x 5 grid with means at (-4, -2, 0, 2, 4)^2), rescaled to genzoo's [-1, 1] data range:
- ring8: means on a circle of radius 0.8 at angles 2 pi k / 8, k = 0..7;
- grid25: means at {-0.8, -0.4, 0, 0.4, 0.8}^2 (spacing 0.4), mode index = 5 * row + column;
- both with isotropic std MODE_STD = 0.01 per coordinate.
At std 0.01 the modes are far apart (0.61 between ring neighbours, 0.4 on the grid, i.e. 40 std
or more), so "within 3 std of a mode" (`mode_statistics`) is unambiguous.

Points are stored as float (N, 2, 1, 1) "images" (one channel per coordinate) in `PointData`, an
`ImageData` whose `batch` returns the floats as they are: `ImageData` keeps uint8 pixels and
rescales them by 1/127.5 - 1, which would quantise a coordinate to steps of 0.008 (almost one
std). Labels are the mode index (num_classes = 8 or 25). The number of points is data.max_images
(default 50,000), drawn with a fixed seed per split (train, test, all), the same on every call.
data.image_size may be unset or 1; data.channels must be unset (the points have 2 channels).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.base import ImageData
from genzoo.errors import ConfigError, DataError
from genzoo.registry import DATASETS

MODE_STD = 0.01  # std of every mode, per coordinate; "high quality" means within 3 * MODE_STD of a mode
DEFAULT_POINTS = 50_000
SPLIT_SEEDS = {"train": 0, "test": 1, "all": 2}


class PointData(ImageData):
    """`ImageData` holding float points (N, D, 1, 1) in [-1, 1] instead of uint8 pixels."""

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        batch = {"image": self.images[indices], "index": indices}  # already float in [-1, 1]: no uint8 rescaling
        if self.labels is not None:
            batch["label"] = self.labels[indices]
        return batch


def modes(name: str) -> Tensor:
    """The mode centres (K, 2) of toy dataset `name` ("ring8" or "grid25")."""
    if name == "ring8":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return (0.8 * torch.stack([angles.cos(), angles.sin()], dim=1)).float()  # (8, 2)
    if name == "grid25":
        ticks = torch.linspace(-0.8, 0.8, 5, dtype=torch.float64)
        rows, columns = torch.meshgrid(ticks, ticks, indexing="ij")
        return torch.stack([rows.flatten(), columns.flatten()], dim=1).float()  # (25, 2)
    raise ConfigError(f"unknown toy dataset {name!r}; choose ring8 or grid25.")


def sample_points(name: str, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """n points (n, 2) of the mixture and their mode indices (n,), balanced over the modes and
    shuffled, from a generator seeded with `seed`."""
    centres = modes(name)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randperm(n, generator=generator) % len(centres)  # (n,) each mode n/K times (+-1)
    noise = torch.randn(n, 2, generator=generator) * MODE_STD  # (n, 2)
    return centres[labels] + noise, labels


def mode_statistics(samples: Tensor, centres: Tensor, std: float = MODE_STD,
                    min_fraction: float = 0.1) -> dict:
    """Mode coverage and sample quality of generated points, after VEEGAN (Srivastava et al. 2017).

    samples (N, 2) or (N, 2, 1, 1); centres (K, 2). A sample is *high quality* when it lies within
    3 * std (Euclidean) of its nearest centre. A mode is *covered* when its high-quality samples
    number at least max(1, ceil(min_fraction * N / K)): by default 10% of what a perfect generator
    would put there. A bare "at least one sample" rule counts modes that a diffuse cloud of samples
    grazes by chance: points spread uniformly over [-1.1, 1.1]^2 put 5.8 of every 10,000 samples
    within 3 std (0.03) of each mode, which would "cover" all 25 grid modes at a 1% threshold (4).
    Returns {"modes_covered": int, "high_quality": float in [0, 1], "counts": [int] * K} where
    counts are the high-quality samples per mode."""
    points = samples.detach().reshape(len(samples), -1).double().cpu()  # (N, 2)
    centres = centres.double().cpu()  # (K, 2)
    distance, nearest = torch.cdist(points, centres).min(dim=1)  # (N,), (N,)
    good = distance <= 3 * std  # (N,)
    counts = torch.bincount(nearest[good], minlength=len(centres))  # (K,)
    threshold = max(1, math.ceil(min_fraction * len(points) / len(centres)))
    return {
        "modes_covered": int((counts >= threshold).sum()),
        "high_quality": float(good.double().mean()) if len(points) else 0.0,
        "counts": counts.tolist(),
    }


def _load(name: str, config: DataConfig) -> PointData:
    if config.channels is not None:
        raise DataError(f"dataset {name!r} holds 2-D points (2 channels); leave data.channels unset.")
    if config.image_size not in (None, 1):
        raise DataError(f"dataset {name!r} holds 2-D points stored as 1 x 1 images; leave data.image_size unset.")
    n = config.max_images or DEFAULT_POINTS
    points, labels = sample_points(name, n, SPLIT_SEEDS[config.split])
    k = len(modes(name))
    return PointData(points[:, :, None, None], labels, num_classes=k, split=config.split,
                     source=f"{name}: {n} points from {k} Gaussians (std {MODE_STD}), split {config.split}")


@DATASETS.register("ring8")
def ring8(config: DataConfig) -> PointData:
    """2-D toy: 8 Gaussians on a ring of radius 0.8 (std 0.01), for mode-collapse tests."""
    return _load("ring8", config)


@DATASETS.register("grid25")
def grid25(config: DataConfig) -> PointData:
    """2-D toy: 25 Gaussians on a 5 x 5 grid in [-0.8, 0.8]^2 (std 0.01), for mode-collapse tests."""
    return _load("grid25", config)

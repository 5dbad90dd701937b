"""Image grids: one way to lay out and write (n, C, H, W) images in [-1, 1] as a PNG."""

from __future__ import annotations

import math
from pathlib import Path

from torch import Tensor
from torchvision.utils import make_grid, save_image

from genzoo.errors import GenzooError
from genzoo.io import atomic_write


def grid_columns(n: int) -> int:
    columns = max(1, round(math.sqrt(n)))
    return columns + columns % 2  # even, so (input, reconstruction) pairs stay on one row


def output_path(output: Path) -> Path:
    """A PNG path whose folder exists; a missing folder is the user's to create."""
    output = output if output.suffix else output.with_suffix(".png")
    if not output.parent.is_dir():
        raise GenzooError(f"folder {str(output.parent)!r} does not exist; create it or choose another -o.")
    return output


def save_grid(images: Tensor, path: Path, columns: int | None = None) -> Tensor:
    """Write the images as one grid PNG, atomically (nothing half-written); return the grid (3, H', W')."""
    path = Path(path)
    grid = make_grid(images.detach().float().clamp(-1, 1).cpu(), nrow=columns or grid_columns(len(images)),
                     normalize=True, value_range=(-1, 1), padding=1)
    atomic_write(path, lambda tmp: save_image(grid, str(tmp), format="png"))
    return grid

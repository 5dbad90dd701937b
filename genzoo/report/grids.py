"""Image grids: one way to lay out and write (n, C, H, W) images in [-1, 1] as a PNG; and animations (GIF).

The layout is torchvision's `make_grid` (tiles in rows of `columns`, 1 px of black between and around
them, grey images shown as RGB), written here with torch and PIL so that `genzoo sample` does not pay
for importing torchvision (seconds: it imports torch's compiler stack).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from genzoo.errors import GenzooError
from genzoo.io import atomic_write

if TYPE_CHECKING:
    from torch import Tensor


def grid_columns(n: int) -> int:
    """Columns of a square-ish grid of n images: ceil(sqrt(n)), made even when n is even, so that
    (input, reconstruction) pairs stay on one row (9 -> 3 x 3, 16 -> 4 x 4, 64 -> 8 x 8, 12 -> 4 x 3)."""
    columns = max(1, math.ceil(math.sqrt(n)))
    return columns + 1 if n % 2 == 0 and columns % 2 else columns


def output_path(output: Path) -> Path:
    """A PNG path for -o: its folder is created when the grid is written; a file in the way is an error now,
    before any work."""
    output = Path(output)
    output = output if output.suffix else output.with_suffix(".png")
    existing = output.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise GenzooError(f"cannot write {str(output)!r}: {str(existing)!r} is a file, not a folder; choose another -o.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise GenzooError(f"cannot write {str(output)!r}: folder {str(existing)!r} is not writable; choose another -o.")
    return output


def make_grid(images: Tensor, columns: int, padding: int = 1) -> Tensor:
    """(n, C, H, W) in [-1, 1] -> one RGB grid (3, H', W') in [0, 1], laid out as torchvision's
    make_grid(normalize=True, value_range=(-1, 1), padding=padding) lays it out."""
    import torch

    images = (images.detach().float().cpu().clamp(-1, 1) + 1) / 2  # (n, C, H, W) in [0, 1]
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    n, channels, height, width = images.shape
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    grid = torch.zeros(channels, rows * (height + padding) + padding, columns * (width + padding) + padding)
    for i, image in enumerate(images):
        top, left = (i // columns) * (height + padding) + padding, (i % columns) * (width + padding) + padding
        grid[:, top : top + height, left : left + width] = image
    return grid


def save_grid(images: Tensor, path: Path, columns: int | None = None) -> Tensor:
    """Write the images as one grid PNG, atomically (nothing half-written), creating its folder; return the
    grid (3, H', W') in [0, 1]."""
    import numpy as np
    import torch
    from PIL import Image

    path = Path(path)
    grid = make_grid(images, columns or grid_columns(len(images)))
    pixels = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GenzooError(f"cannot create folder {str(path.parent)!r} ({error.strerror or error}); choose another -o.") from None
    atomic_write(path, lambda tmp: Image.fromarray(np.ascontiguousarray(pixels), "RGB").save(tmp, format="png"))
    return grid


def save_images(images: Tensor, folder: Path) -> list[Path]:
    """Write each image (n, C, H, W) in [-1, 1] as its own PNG, 000000.png, 000001.png, ..., into `folder`
    (created), each atomically; grey images stay grey."""
    import numpy as np
    import torch
    from PIL import Image

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GenzooError(f"cannot create folder {str(folder)!r} ({error.strerror or error}); choose another -o.") from None
    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).add_(0.5).floor_().clamp_(0, 255).to(torch.uint8)
    paths = []
    for index, image in enumerate(pixels.permute(0, 2, 3, 1).numpy()):  # (H, W, C) each
        path = folder / f"{index:06d}.png"
        array = np.ascontiguousarray(image[..., 0] if image.shape[-1] == 1 else image)
        atomic_write(path, lambda tmp, array=array: Image.fromarray(array).save(tmp, format="png"))
        paths.append(path)
    return paths


def save_gif(frames: Tensor, path: Path, frames_per_second: float = 20.0) -> None:
    """Write frames (n, C, H, W) in [-1, 1] as a looping animated GIF, atomically."""
    from PIL import Image

    pixels = ((frames.detach().float().clamp(-1, 1).cpu() + 1) * 127.5).round().byte()  # (n, C, H, W)
    if pixels.shape[1] == 1:
        pixels = pixels.expand(-1, 3, -1, -1)
    images = [Image.fromarray(frame.permute(1, 2, 0).numpy()) for frame in pixels]
    duration = max(20, round(1000 / frames_per_second))  # ms per frame (GIF stores hundredths of a second)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GenzooError(f"cannot create folder {str(Path(path).parent)!r} ({error.strerror or error}); choose another -o.") from None
    atomic_write(Path(path), lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                                                        duration=duration, loop=0))

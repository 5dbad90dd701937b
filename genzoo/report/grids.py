"""Image grids: one way to lay out and write (n, C, H, W) images in [-1, 1] as a PNG; and animations (GIF)."""

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


def save_gif(frames: Tensor, path: Path, frames_per_second: float = 20.0) -> None:
    """Write frames (n, C, H, W) in [-1, 1] as a looping animated GIF, atomically."""
    from PIL import Image

    pixels = ((frames.detach().float().clamp(-1, 1).cpu() + 1) * 127.5).round().byte()  # (n, C, H, W)
    if pixels.shape[1] == 1:
        pixels = pixels.expand(-1, 3, -1, -1)
    images = [Image.fromarray(frame.permute(1, 2, 0).numpy()) for frame in pixels]
    duration = max(20, round(1000 / frames_per_second))  # ms per frame (GIF stores hundredths of a second)
    atomic_write(Path(path), lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                                                        duration=duration, loop=0))

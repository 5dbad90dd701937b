"""Any folder of images, searched recursively (png, jpg, jpeg, bmp, gif, webp, tif, tiff).

Images are decoded once, converted to grey or RGB (data.channels; default RGB unless every image is
grey), resized so the shorter side is data.image_size (default 64) and centre-cropped. With one
sub-folder per class (torchvision's ImageFolder layout), the sub-folder names become labels.
A file that cannot be decoded stops the run with its name, before training starts.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from rich.progress import track

from genzoo.config import DataConfig
from genzoo.data.base import ImageData, resize_crop
from genzoo.errors import DataError
from genzoo.io import is_main_process
from genzoo.registry import DATASETS

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def find_images(root: Path) -> list[Path]:
    if root.exists() and not root.is_dir():
        raise DataError(f"image folder {str(root)!r} is a file, not a folder; give the folder that holds the images.")
    if not root.is_dir():
        raise DataError(f"image folder {str(root)!r} does not exist; set data.root to a folder of images.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"image folder {str(root)!r} holds no images ({', '.join(sorted(EXTENSIONS))}); add some.")
    return files


def open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"cannot decode image {str(path)!r} ({type(error).__name__}); remove or replace it.") from None


@DATASETS.register("image-folder")
def image_folder(config: DataConfig) -> ImageData:
    if config.root is None:
        raise DataError("the image-folder dataset needs a folder: set data.root=PATH (or --data-root PATH).")
    root = Path(config.root).expanduser()
    files = find_images(root)[: config.max_images]
    size = config.image_size or 64
    shown = is_main_process()  # every process decodes; the main one shows it
    with closing(track(files, description="decoding images", transient=True, disable=not shown)) as paths:  # closed on a bad file too
        opened = [open_image(path) for path in paths]
    channels = config.channels or (1 if all(map(is_grey, opened)) else 3)
    tensors = [resize_crop(pixels(image, channels), size) for image in opened]  # (1, C, s, s) each
    classes = sorted({p.parent.relative_to(root).parts[0] for p in files if p.parent != root})
    labels, num_classes = None, None
    if classes and all(p.parent != root for p in files) and len(classes) > 1:
        index = {name: i for i, name in enumerate(classes)}
        labels = torch.tensor([index[p.parent.relative_to(root).parts[0]] for p in files])
        num_classes = len(classes)
    picked = [f"data.image_size={size} (the default)"] * (config.image_size is None) + [
        f"data.channels={channels} ({'every image is grey' if channels == 1 else 'not every image is grey'})"
    ] * (config.channels is None)
    notes = [f"{len(files)} images from {root}: picked {' and '.join(picked)}; written to the run's config.json, "
             "set them to choose."] if picked else []
    return ImageData(torch.cat(tensors), labels, num_classes, source=f"{len(files)} images from {root}",
                     class_names=classes if labels is not None else None, notes=notes)


def is_grey(image: Image.Image) -> bool:
    return image.mode in ("L", "1", "I;16", "I")


def pixels(image: Image.Image, channels: int) -> torch.Tensor:
    """A decoded image as uint8 (1, channels, H, W): 16-bit scaled to 8, colour to grey or grey to RGB."""
    mode = "L" if channels == 1 else "RGB"
    array = np.array(to_8bit(image).convert(mode), dtype=np.uint8).reshape(image.height, image.width, channels)
    return torch.from_numpy(array).permute(2, 0, 1)[None]


def to_8bit(image: Image.Image) -> Image.Image:
    """16- and 32-bit grey images scaled to 8 bits, keeping their range; RGBA and palette as RGB(A)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        return Image.fromarray(np.clip(array / top * 255.0, 0, 255).round().astype(np.uint8), "L")
    if image.mode == "P":
        return image.convert("RGBA")
    return image

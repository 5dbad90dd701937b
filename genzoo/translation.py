"""Translate image files with a trained model: `genzoo translate RUN INPUT... -o OUT`.

Inputs are image files or folders (searched recursively); each image is decoded as the image-folder
dataset decodes (grey, RGB, RGBA, palette, 16-bit), brought to the model's channels, resized so that
its shorter side is the model's image size and centre-cropped, translated, and written as a PNG under
OUT with the same relative name (a file given directly keeps its file name). Every input is decoded
and the target domain checked before anything is written, so a bad file or a domain that does not
exist leaves OUT as it was; each output is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genzoo.errors import GenzooError

TRANSLATING_FAMILIES = "pix2pix, cyclegan, stargan or swap"


def translator(run: str | Path, ema: bool | None = None) -> Any:
    """The run's model, checked to translate."""
    from genzoo.loading import load
    from genzoo.models.base import CanTranslate, capabilities

    model = load(run, ema=ema)
    if not isinstance(model, CanTranslate):
        raise GenzooError(f"{run} is a {type(model).__name__} run, which does not translate images (it can: "
                          f"{', '.join(capabilities(model))}); use a run of {TRANSLATING_FAMILIES}.")
    return model


def default_domain(model: Any) -> str | int:
    """Domain b for two-domain models; a model of many domains (StarGAN) needs one named."""
    if getattr(model, "num_domains", 0):
        names = ", ".join(model.info.class_names or [str(i) for i in range(model.num_domains)])
        raise GenzooError(f"this model translates into one of {model.num_domains} domains ({names}); choose one with --to.")
    return "b"


def parse_domain(to: str | None) -> str | int | None:
    return int(to) if to is not None and to.strip().isdigit() else to


def find_inputs(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """(image file, relative output name) for every input file and every image under an input folder."""
    from genzoo.data.image_folder import find_images

    found: list[tuple[Path, Path]] = []
    for item in inputs:
        if item.is_dir():
            found += [(path, path.relative_to(item).with_suffix(".png")) for path in find_images(item)]
        elif item.is_file():
            found.append((item, Path(item.name).with_suffix(".png")))
        else:
            raise GenzooError(f"input {str(item)!r} does not exist; give image files or folders of images.")
    names: dict[Path, Path] = {}
    for path, name in found:
        if name in names:
            raise GenzooError(f"{str(names[name])!r} and {str(path)!r} would both be written as {str(name)!r}; "
                              "translate them in separate runs or rename one.")
        names[name] = path
    return found


def read_images(paths: list[Path], channels: int, size: int) -> Tensor:
    """The images as the model reads them: (N, channels, size, size) in [-1, 1]."""
    from genzoo.data.base import resize_crop
    from genzoo.data.image_folder import open_image, pixels

    return torch.cat([resize_crop(pixels(open_image(path), channels), size) for path in paths]).float() / 127.5 - 1.0


def translate_images(model: Any, images: Tensor, to: str | int, batch_size: int = 64) -> Tensor:
    """translate(images, to) in batches: (N, C, H, W) in [-1, 1] -> the same shape."""
    return torch.cat([model.translate(chunk.to(model.device), to=to).cpu() for chunk in images.split(batch_size)])


def translate_files(run: str | Path, inputs: list[Path], out: Path, to: str | int | None = None, ema: bool | None = None,
                    batch_size: int = 64) -> tuple[list[Path], Tensor, Tensor]:
    """Translate the images of `inputs` into `out`; returns (written paths, inputs, outputs) in [-1, 1]."""
    from torchvision.utils import save_image

    from genzoo.io import atomic_write

    if out.exists() and not out.is_dir():
        raise GenzooError(f"output {str(out)!r} is a file; give a folder (-o OUT) for the translated images.")
    model = translator(run, ema)
    to = default_domain(model) if to is None else to
    info = model.info
    with torch.no_grad():
        model.translate(torch.zeros(1, info.channels, info.image_size, info.image_size, device=model.device), to=to)  # a bad domain fails here
    found = find_inputs(inputs)
    images = read_images([path for path, _ in found], info.channels, info.image_size)  # every file decoded before any write
    outputs = translate_images(model, images, to, batch_size)
    written = []
    for (_, name), image in zip(found, outputs):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp, image=image: save_image((image + 1) / 2, str(tmp), format="png"))
        written.append(path)
    return written, images, outputs

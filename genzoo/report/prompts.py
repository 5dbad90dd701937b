"""Prompts beside their images: the pictures of text-to-image models (report, `genzoo sample --prompts`).

`prompt_figure` lays out rows of images, each row headed by its prompt in text (Pillow's built-in font,
so nothing is downloaded); `prompt_pictures` makes the report's: prompts of the caption distribution and,
where the data holds combinations out of training, prompts with a held-out combination in each.
`read_prompts` reads a prompts file (one per line) for `genzoo sample --prompts FILE`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from genzoo.errors import GenzooError
from genzoo.report.grids import save_grid


def read_prompts(path: Path) -> list[str]:
    """The non-blank lines of a UTF-8 file, stripped; an empty or unreadable file is refused in one sentence."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise GenzooError(f"prompts file {str(path)!r} does not exist; give a text file with one prompt per line.") from None
    except IsADirectoryError:
        raise GenzooError(f"prompts file {str(path)!r} is a folder; give a text file with one prompt per line.") from None
    except UnicodeDecodeError:
        raise GenzooError(f"prompts file {str(path)!r} is not UTF-8 text; save it as UTF-8, one prompt per line.") from None
    prompts = [line.strip() for line in lines if line.strip()]
    if not prompts:
        raise GenzooError(f"prompts file {str(path)!r} holds no prompts (it is empty or blank); write one prompt per line.")
    return prompts


def prompt_figure(images: Tensor, prompts: list[str], scale: int = 3) -> Tensor:
    """Rows of images (k rows of m: (k m, C, H, W) in [-1, 1], row-major), each after its prompt (k strings):
    one picture (1, 3, H', W') in [-1, 1]."""
    rows, side = len(prompts), images.shape[-1] * scale
    columns = len(images) // rows
    pixels = ((images.detach().float().clamp(-1, 1).cpu() + 1) * 127.5).round().byte()  # (n, C, H, W)
    if pixels.shape[1] == 1:
        pixels = pixels.expand(-1, 3, -1, -1)
    font = ImageFont.load_default(size=max(11, side // 6))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_width = max(measure.textbbox((0, 0), prompt, font=font)[2] for prompt in prompts) + 12
    gap = 2
    canvas = Image.new("RGB", (text_width + columns * (side + gap), rows * (side + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for row, prompt in enumerate(prompts):
        top = row * (side + gap)
        box = draw.textbbox((0, 0), prompt, font=font)
        draw.text((6, top + (side - box[3]) // 2), prompt, fill=(20, 20, 20), font=font)
        for column in range(columns):
            tile = Image.fromarray(pixels[row * columns + column].permute(1, 2, 0).numpy()).resize((side, side), Image.NEAREST)
            canvas.paste(tile, (text_width + column * (side + gap), top))
    array = torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).float() / 127.5 - 1  # (3, H', W')
    return array[None]


def save_prompt_figure(images: Tensor, prompts: list[str], path: Path) -> None:
    save_grid(prompt_figure(images, prompts), path, columns=1)


def prompt_pictures(model: Any, grammar: Any, generator: torch.Generator, rows: int = 6, per_prompt: int = 6) -> list[tuple[str, str, Tensor]]:
    """(name, caption, picture) of a text-to-image model's samples for `rows` prompts of its data's grammar, each
    `per_prompt` times: prompts like the training captions, and prompts with held-out combinations (if any)."""
    pictures = []
    for held_out in (False, True) if grammar.held_out else (False,):
        prompts = grammar.prompts(rows, held_out, generator)
        images = model.generate(rows * per_prompt, prompts=[p for p in prompts for _ in range(per_prompt)], generator=generator)
        label = f"held-out combinations ({', '.join(grammar.held_out)} never seen in training)" if held_out else "prompts like the training captions"
        pictures.append((f"prompts-{'held-out' if held_out else 'seen'}", f"prompts beside their samples: {label}",
                         prompt_figure(images, prompts)))
    return pictures

"""What autoregressive models show: images completed from their top rows, text at several temperatures.

Used by `genzoo complete`, `genzoo sample` (text models) and the report's pictures.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genzoo.errors import GenzooError

GREY = 0.0  # the hidden part of an occluded image, in [-1, 1]


def top_rows_mask(x: Tensor, rows: int) -> Tensor:
    """True on the top `rows` rows of images x (B, C, H, W), which a completion keeps."""
    height = x.shape[-2]
    if not 0 <= rows < height:
        raise GenzooError(f"--rows {rows} is not inside the image, which has {height} rows; keep 0 to {height - 1} "
                          "rows (half is 14 for 28 x 28 images).")
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[..., :rows, :] = True
    return mask


def completion_grid(model: Any, images: Tensor, rows: int, completions: int, generator: torch.Generator | None = None,
                    labels: Tensor | None = None) -> Tensor:
    """For each image (n, C, H, W): the occluded input (hidden rows grey), `completions` completions of its top
    `rows` rows, and the original, as rows of a grid: (n (completions + 2), C, H, W)."""
    mask = top_rows_mask(images, rows)
    repeated = images.repeat_interleave(completions, dim=0)  # (n k, C, H, W): image 0 k times, then image 1 ...
    options = {"labels": labels.repeat_interleave(completions)} if labels is not None else {}
    filled = model.complete(repeated, mask.repeat_interleave(completions, dim=0), generator=generator, **options)
    occluded = torch.where(mask, images, torch.full_like(images, GREY))
    filled = filled.to(images.device).unflatten(0, (len(images), completions))  # (n, k, C, H, W)
    return torch.cat([occluded[:, None], filled, images[:, None]], dim=1).flatten(0, 1)


def format_samples(texts: list[str], heading: str) -> str:
    """Texts as one plain-text block: a heading, then each text under its own numbered rule."""
    parts = [heading, ""]
    for i, text in enumerate(texts, 1):
        parts += [f"--- {i} ---", text, ""]
    return "\n".join(parts)


def text_at_temperatures(model: Any, n: int, temperatures: tuple[float, ...] = (0.5, 0.8, 1.0), beam: int | None = 4,
                         length: int | None = None, prompt: str | None = None, seed: int = 0) -> str:
    """n samples of a text model at each temperature, then its beam search's best, as one text block."""
    from genzoo.data.text import decode

    blocks = []
    for temperature in temperatures:
        generator = torch.Generator(device=model.device).manual_seed(seed)
        tokens = model.generate(n, generator=generator, temperature=temperature, length=length, prompt=prompt)
        blocks.append(format_samples(decode(tokens, model.info), f"=== temperature {temperature:g} ==="))
    if beam:
        tokens = model.generate(1, beam=beam, length=length, prompt=prompt)
        blocks.append(format_samples(decode(tokens, model.info), f"=== beam search, {beam} beams: the most likely ==="))
    return "\n".join(blocks)

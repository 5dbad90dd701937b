"""Pictures of a style-based generator's intermediate latent space W: style mixing and truncation sweeps.

A model has a style space when it maps codes (`map_latent(z) -> w`), decodes one w per style layer
(`decode_w(ws)` with ws (n, L, D)), truncates (`truncate(w, psi)`) and says which resolution each style
layer works at (`style_resolutions`, and `active_ws`: the layers its current level of detail uses).
StyleGAN has one (genzoo.models.stylegan).

- Style mixing (Karras et al. 2019, Sec. 3.1, Fig. 3): images of source A with the styles of some
  layers copied from source B. Copying the coarse styles (4^2 - 8^2) brings B's pose and shape, the
  middle ones (16^2 - 32^2) smaller features, the fine ones (64^2 and up) colour and micro-structure. A
  network smaller than 64 x 64 has its resolutions split into three groups instead (32 x 32: 4^2 - 8^2,
  16^2, 32^2).
- Truncation (Sec. 3.2, Fig. 8): w' = w_avg + psi (w - w_avg), one row per code, psi across.
Both decode with each layer's fixed noise image, so only the styles differ between cells.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from genzoo.errors import GenzooError
from genzoo.latent import STYLE_SPACE

PSI_SWEEP = (0.0, 0.25, 0.5, 0.75, 1.0)


def check_style_space(model: Any) -> None:
    if not STYLE_SPACE.applies(model):
        raise GenzooError(f"a {type(model).__name__} model has no style layers to mix (no mapping network); "
                          "use a run of the stylegan family.")


def style_groups(model: Any) -> dict[str, list[int]]:
    """The style layers (indices) of each group the model's current level of detail uses: coarse, middle,
    fine as in Fig. 3 (4^2-8^2, 16^2-32^2, 64^2 and up) from 64 x 64 up, else its resolutions in thirds."""
    active = model.style_resolutions[: model.active_ws]
    sizes = sorted(set(active))
    if sizes[-1] >= 64:
        bands = [[r for r in sizes if r <= 8], [r for r in sizes if 16 <= r <= 32], [r for r in sizes if r >= 64]]
    else:  # front-loaded thirds: 4 resolutions -> 2, 1, 1
        share = [math.ceil((len(sizes) - i) / 3) for i in range(3)]
        bands = [sizes[sum(share[:i]) : sum(share[: i + 1])] for i in range(3)]
    groups = {}
    for name, band in zip(("coarse", "middle", "fine"), bands):
        if band:
            groups[f"{name} ({band[0]}-{band[-1]} px)" if len(band) > 1 else f"{name} ({band[0]} px)"] = [
                i for i, r in enumerate(active) if r in band]
    return groups


def parse_layers(text: str, model: Any) -> list[int]:
    """Layer indices from "3", "0-3" or "0,2,5", each checked against the layers the model uses."""
    check_style_space(model)
    try:
        indices: list[int] = []
        for part in text.replace(" ", "").split(","):
            first, _, last = part.partition("-")
            indices += list(range(int(first), int(last or first) + 1))
    except ValueError:
        raise GenzooError(f"--layers {text!r} is not a layer index or a range such as 0-3 or 0,2,5.") from None
    if not indices:
        raise GenzooError(f"--layers {text!r} names no layer; give a range such as 0-3.")
    total, active = model.num_ws, model.active_ws
    bad = [i for i in indices if not 0 <= i < active]
    if bad:
        grown = "" if active == total else f" (of {total}; it has not grown to the others yet)"
        raise GenzooError(f"style layer {bad[0]} is beyond this network's layers 0-{active - 1}{grown}; choose "
                          f"layers from 0 to {active - 1}.")
    return sorted(set(indices))


@torch.no_grad()
def style_mixing_grid(model: Any, rows: int = 3, columns: int = 5, layers: list[int] | None = None,
                      psi: float | None = None, generator: torch.Generator | None = None) -> tuple[Tensor, int, list[str]]:
    """Fig. 3: the top row holds the `columns` images of source A (after a blank corner), then one block per
    group of layers (coarse, middle, fine; or just `layers`), each row an image of source B followed by
    the A images with that group's styles taken from B.

    Returns the images ((1 + blocks * rows) * (1 + columns), C, H, W), the grid's columns (1 + columns)
    and the name of each block."""
    check_style_space(model)
    if rows < 1 or columns < 1:
        raise GenzooError(f"a mixing grid needs at least 1 row and 1 column, got {rows} and {columns}.")
    groups = {f"layers {', '.join(map(str, layers))}": layers} if layers else style_groups(model)
    was_training = model.training
    model.eval()
    try:
        z = model.sample_latent(columns + rows, generator)  # (A + B, D)
        w = model.truncate(model.map_latent(z), psi)  # (A + B, D)
        w_a, w_b = w[:columns], w[columns:]  # (A, D), (B, D)
        count = model.num_ws
        source_a = model.decode_w(w_a)  # (A, C, H, W)
        source_b = model.decode_w(w_b)  # (B, C, H, W)
        blank = torch.ones_like(source_a[:1])  # the corner: white
        cells = [blank, source_a]
        for indices in groups.values():
            copied = torch.zeros(count, dtype=torch.bool, device=w.device)
            copied[indices] = True
            ws = torch.where(copied[None, None, :, None], w_b[:, None, None], w_a[None, :, None])  # (B, A, L, D)
            mixed = model.decode_w(ws.flatten(0, 1)).unflatten(0, (rows, columns))  # (B, A, C, H, W)
            for row in range(rows):
                cells += [source_b[row : row + 1], mixed[row]]
    finally:
        model.train(was_training)
    return torch.cat(cells), columns + 1, list(groups)


@torch.no_grad()
def psi_sweep(model: Any, rows: int = 4, psis: tuple[float, ...] = PSI_SWEEP,
              generator: torch.Generator | None = None) -> Tensor:
    """Fig. 8: row r is one code truncated with each psi in turn, w' = w_avg + psi (w - w_avg).
    (rows * len(psis), C, H, W), row-major; psi = 0 is the mean image in every row."""
    check_style_space(model)
    was_training = model.training
    model.eval()
    try:
        w = model.map_latent(model.sample_latent(rows, generator))  # (R, D)
        ws = torch.stack([model.truncate(w, psi) for psi in psis], dim=1)  # (R, P, D)
        return model.decode_w(ws.flatten(0, 1))  # (R * P, C, H, W)
    finally:
        model.train(was_training)

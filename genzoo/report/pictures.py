"""The pictures of a trained model that the report shows beside its sample grids, chosen by what the
model can do: inputs beside reconstructions, random samples, latent interpolations, per-dimension
traversals (for models with a N(0, I) prior, e.g. the VAE), domain swaps, and prompts beside their samples
(text-to-image models, `genzoo.report.prompts`). Written as PNGs to
`RUN/pictures/` from the final (EMA, when present) weights; `genzoo latent ...` makes larger ones."""

from __future__ import annotations

from pathlib import Path

import torch

from genzoo.errors import GenzooError
from genzoo.report.grids import save_grid
from genzoo.train.checkpoint import RunFolder


def write_pictures(run: RunFolder, n: int = 8, seed: int = 0) -> list[tuple[str, Path]]:
    """(caption, path) of each picture written; a model that can do none of these gets none."""
    from genzoo.loading import load
    from genzoo.config import build_config
    from genzoo.data import build_dataset
    from genzoo.latent import interpolation_grid, latent_space, traversal
    from genzoo.metrics.prompts import accepts_prompts
    from genzoo.models.base import CanGenerate, CanReconstruct, CanTranslate, swap_rows
    from genzoo.report.prompts import prompt_pictures

    model = load(run.path)
    folder = run.path / "pictures"
    folder.mkdir(exist_ok=True)
    written: list[tuple[str, Path]] = []

    def save(name: str, caption: str, images: torch.Tensor, columns: int) -> None:
        path = folder / f"{name}.png"
        save_grid(images, path, columns)
        written.append((caption, path))

    generator = torch.Generator().manual_seed(seed)
    if isinstance(model, CanGenerate):
        save("samples", "random samples", model.generate(2 * n, generator=generator), n)
    if accepts_prompts(model):  # text to image: prompts beside their samples, held-out combinations too
        data = build_dataset(build_config(run.read_config()).data)
        for name, caption, picture in prompt_pictures(model, data.grammar, generator):
            save(name, caption, picture, 1)
    if isinstance(model, (CanReconstruct, CanTranslate)):
        data = build_dataset(build_config(run.read_config()).data)
        batch = data.batch(torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n])
        if isinstance(model, CanTranslate) and "a" in batch:
            save("swaps", "swaps: a, a → b, b, b → a", swap_rows(model, batch["a"], batch["b"]), 4)
        elif isinstance(model, CanReconstruct):
            labels = {"labels": batch["label"]} if getattr(model, "conditional", False) else {}
            pairs = torch.stack([batch["image"], model.reconstruct(batch["image"], **labels)], dim=1)  # (n, 2, C, H, W)
            save("reconstructions", "inputs beside their reconstructions", pairs.flatten(0, 1), 2 * min(n, 4))
    try:
        latent_space(model)
    except GenzooError:
        return written
    save("interpolation", "spherical interpolations between random codes", interpolation_grid(model, 4, 8, True, generator), 8)
    if getattr(model, "latent_prior", None) == "standard normal":
        images, rows = traversal(model, dims=min(8, model.config.latent_dim), steps=8, generator=generator)
        save("traversal", f"traversals of the first {rows} latent dimensions, -3 to 3", images, 8)
    return written

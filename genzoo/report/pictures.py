"""The pictures of a trained model that the report shows beside its sample grids, chosen by what the
model can do: inputs beside reconstructions, random samples, latent interpolations, per-dimension
traversals (for models with a N(0, I) prior, e.g. the VAE), domain swaps and translations (input, output,
target for paired data; both directions and the cycles back for two unpaired domains; every domain for
StarGAN), completed images; for a style-based generator (a space W of mapped codes) interpolations in w, a
style-mixing grid and a truncation (psi) sweep; for a text model, text at several temperatures (`samples.txt`); and the pictures a family
declares of itself (`pictures(data, generator)`, e.g. a chair turning, a scene's orbit); prompts beside their
samples (text-to-image models, `genzoo.report.prompts`); source and target features before and after
training for a model that can `encode` a run with data.target (domain adaptation, `genzoo.report.domains`).
Written as PNGs to `RUN/pictures/` from the final (EMA, when present) weights; `genzoo latent ...` makes larger ones."""

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
    from genzoo.latent import STYLE_SPACE, interpolation_grid, latent_space, traversal
    from genzoo.models.base import CanComplete, CanGenerate, CanReconstruct, CanTranslate, swap_rows
    from genzoo.style_space import PSI_SWEEP, psi_sweep, style_mixing_grid
    from genzoo.metrics.prompts import accepts_prompts
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
    if model.modality == "text":  # text at several temperatures and the beam search's best, as plain text
        from genzoo.completion import text_at_temperatures
        from genzoo.io import atomic_write_text

        path = folder / "samples.txt"
        atomic_write_text(path, text_at_temperatures(model, 3, seed=seed))
        return [("samples at temperatures 0.5, 0.8 and 1, and the most likely text of a beam search", path)]
    if callable(getattr(model, "pictures", None)):  # a family's pictures of itself (a rotating chair, an orbit)
        data = build_dataset(build_config(run.read_config()).data)
        for picture in model.pictures(data, generator):
            save(picture.name, picture.caption, picture.images, picture.columns)
    if callable(getattr(model, "encode", None)) and run.read_config().get("data", {}).get("target"):
        written.append(adaptation_picture(run, model, folder, seed))
    if isinstance(model, CanGenerate):
        save("samples", "random samples", model.generate(2 * n, generator=generator), n)
    if accepts_prompts(model):  # text to image: prompts beside their samples, held-out combinations too
        data = build_dataset(build_config(run.read_config()).data)
        for name, caption, picture in prompt_pictures(model, data.grammar, generator):
            save(name, caption, picture, 1)
    if isinstance(model, (CanReconstruct, CanTranslate)):
        data = build_dataset(build_config(run.read_config()).data)
        batch = data.batch(torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n])
        if isinstance(model, CanTranslate) and ("a" in batch or "label" in batch):
            for name, caption, images, columns in translation_pictures(model, batch):
                save(name, caption, images, columns)
        elif isinstance(model, CanReconstruct):
            labels = {"labels": batch["label"]} if getattr(model, "conditional", False) else {}
            pairs = torch.stack([batch["image"], model.reconstruct(batch["image"], **labels)], dim=1)  # (n, 2, C, H, W)
            save("reconstructions", "inputs beside their reconstructions", pairs.flatten(0, 1), 2 * min(n, 4))
    if isinstance(model, CanComplete):  # the occluded-image figure: top halves completed
        from genzoo.completion import completion_grid

        data = build_dataset(build_config(run.read_config()).data)
        batch = data.batch(torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[: n // 2])
        labels = batch.get("label") if getattr(model, "conditional", False) else None
        grid = completion_grid(model, batch["image"], batch["image"].shape[-2] // 2, 3, generator, labels)
        save("completions", "top halves completed: occluded input, 3 completions, original", grid, 5)
    try:
        latent_space(model)
    except GenzooError:
        return written
    save("interpolation", "spherical interpolations between random codes", interpolation_grid(model, 4, 8, True, generator), 8)
    if getattr(model, "latent_prior", None) == "standard normal":
        images, rows = traversal(model, dims=min(8, model.config.latent_dim), steps=8, generator=generator)
        save("traversal", f"traversals of the first {rows} latent dimensions, -3 to 3", images, 8)
    if STYLE_SPACE.applies(model):
        save("interpolation-w", "linear interpolations in w", interpolation_grid(model, 4, 8, None, generator, "w"), 8)
        images, columns, blocks = style_mixing_grid(model, 2, 5, generator=generator)
        save("style-mixing", f"style mixing: top row A; rows of B, then A with B's {', then '.join(blocks)} styles",
             images, columns)
        save("psi", f"truncation in w, psi = {', '.join(f'{p:g}' for p in PSI_SWEEP)} across", psi_sweep(model, 4, generator=generator),
             len(PSI_SWEEP))
    return written


@torch.no_grad()
def translation_pictures(model, batch: dict[str, torch.Tensor]) -> list[tuple[str, str, torch.Tensor, int]]:  # noqa: ANN001
    """(name, caption, images, columns) of a translating model on a batch of its data."""
    from genzoo.models.base import swap_rows

    if "a" not in batch:  # classes as domains (StarGAN): each input, then translated to every domain
        x, k = batch["image"], model.num_classes
        rows = torch.stack([x] + [model.translate(x, to=domain) for domain in range(k)], dim=1)  # (n, 1 + K, C, H, W)
        names = ", ".join(model.info.class_names or [str(i) for i in range(k)])
        return [("translations", f"each row: an input, then translated to every domain ({names})", rows.flatten(0, 1), k + 1)]
    a, b = batch["a"], batch["b"]
    fake_b = model.translate(a, to="b")
    pictures = []
    if model.info.paired:
        pictures.append(("translations", "input a, output a → b, target b", torch.stack([a, fake_b, b], 1).flatten(0, 1), 3))
    try:
        fake_a = model.translate(b, to="a")
    except GenzooError:  # one direction only (pix2pix)
        return pictures
    if not model.info.paired:
        pictures.append(("swaps", "swaps: a, a → b, b, b → a", swap_rows(model, a, b), 4))
    cycles = torch.stack([a, fake_b, model.translate(fake_b, to="a"), b, fake_a, model.translate(fake_a, to="b")], 1)
    pictures.append(("cycles", "cycles: a, a → b, a → b → a, b, b → a, b → a → b", cycles.flatten(0, 1), 6))
    return pictures


def adaptation_picture(run: RunFolder, model, folder: Path, seed: int = 0) -> tuple[str, Path]:  # noqa: ANN001
    """Source and target features of the run's data before (initial weights) and after training
    (genzoo.report.domains), for a model that can `encode` a run with data.target."""
    from genzoo.config import build_config
    from genzoo.data import build_dataset
    from genzoo.loading import initial_model
    from genzoo.report.domains import feature_picture

    data = build_dataset(build_config(run.read_config()).data)
    after = "after (trained, EMA weights)" if getattr(model, "uses_ema", False) else "after (trained)"
    path = folder / "features.png"
    caption = feature_picture({"before (initial weights)": initial_model(run), after: model}, data, path, seed=seed)
    return f"{caption}; training images", path

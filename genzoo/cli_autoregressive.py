"""`genzoo complete`, and what `genzoo sample` prints for a text model (argument parsing and printing only;
the work is in `genzoo.completion` and the models)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from genzoo.errors import GenzooError

out = Console(soft_wrap=True)  # long paths stay whole


def text_output_path(output: Path) -> Path:
    """Where a text model's samples go: -o, or samples.txt for the default samples.png; checked before sampling."""
    output = output.with_suffix(".txt") if output == Path("samples.png") else output
    if not output.parent.is_dir():
        raise GenzooError(f"folder {str(output.parent)!r} does not exist; create it or choose another -o.")
    if output.is_dir():
        raise GenzooError(f"cannot write the samples to {str(output)!r}, a folder; give a file name such as samples.txt.")
    return output


def write_text_samples(model: Any, tokens: Any, output: Path, note: str) -> None:
    """Print a text model's samples (n, T) and write them to `output`."""
    from genzoo.completion import format_samples
    from genzoo.data.text import decode
    from genzoo.io import atomic_write_text

    text = format_samples(decode(tokens, model.info), f"{len(tokens)} samples{note}")
    atomic_write_text(output, text)
    out.print(escape(text), highlight=False, soft_wrap=True)
    out.print(f"wrote {len(tokens)} samples{note} to [bold]{escape(str(output))}[/]", highlight=False)


def complete(
    run: Annotated[Path, typer.Argument(help="A run folder of a model that completes images (pixelcnn).", show_default=False)],
    images: Annotated[Optional[Path], typer.Argument(help="A folder of images \\[default: the run's test split].", show_default=False)] = None,
    rows: Annotated[int, typer.Option(help="Top rows kept; the rest is sampled.")] = 14,
    n: Annotated[int, typer.Option("-n", min=1, max=256, help="Images to complete.")] = 8,
    completions: Annotated[int, typer.Option("-k", "--completions", min=1, max=32, help="Completions per image.")] = 4,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file for the grid.")] = Path("completions.png"),
    seed: Annotated[int, typer.Option(help="Seed that picks the images and samples the completions.")] = 0,
    ema: Annotated[Optional[bool], typer.Option("--ema/--no-ema", help="Use the EMA weights \\[default: when the run has them].", show_default=False)] = None,
) -> None:
    """Complete images from their top rows: one grid row per image, the occluded input (hidden rows grey),
    k completions and the original.

    Examples: genzoo complete runs/pixelcnn --rows 14 -n 8 -k 4;  genzoo complete runs/pixelcnn photos/ --rows 10
    """
    import time

    import torch

    from genzoo.completion import completion_grid, top_rows_mask
    from genzoo.loading import load
    from genzoo.models.base import CanComplete, capabilities
    from genzoo.report.grids import output_path, save_grid

    output = output_path(output)
    model = load(run, ema=ema)
    if not isinstance(model, CanComplete) or model.modality != "image":
        hint = ("; for a text model give a prompt: genzoo sample RUN --prompt TEXT" if model.modality == "text"
                else f" (it can: {', '.join(capabilities(model))}); train pixelcnn")
        raise GenzooError(f"a {type(model).__name__} model does not complete images{hint}.")
    top_rows_mask(torch.zeros(1, 1, model.info.image_size, 1), rows)  # --rows inside the image, before any work
    batch = _images(run, images, model, n, seed)
    labels = batch.get("label") if model.conditional else None
    started = time.perf_counter()
    grid = completion_grid(model, batch["image"], rows, completions, torch.Generator().manual_seed(seed), labels)
    seconds = time.perf_counter() - started
    save_grid(grid, output, completions + 2)
    ema_note = " (EMA weights)" if getattr(model, "uses_ema", False) else ""
    out.print(f"wrote {len(batch['image'])} images x {completions} completions of their top {rows} rows{ema_note} in "
              f"{seconds:.1f} s to [bold]{escape(str(output))}[/] (each row: occluded input, completions, original)",
              highlight=False)


def _images(run: Path, folder: Path | None, model: Any, n: int, seed: int) -> dict:
    """n images (and labels) from a folder at the model's size and channels, or from the run's test split."""
    import torch

    from genzoo.config import DataConfig, build_config
    from genzoo.data import build_dataset
    from genzoo.train.checkpoint import RunFolder

    if folder is not None:
        config = DataConfig(name="image-folder", root=str(folder), image_size=model.info.image_size,
                            channels=model.info.channels)
    else:
        config = build_config(RunFolder(run).read_config()).data.model_copy(update={"split": "test"})
    data = build_dataset(config)
    indices = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[: min(n, len(data))]
    return data.batch(indices)

"""`genzoo translate RUN INPUT... -o OUT`: image files or folders through a translation model (argument
parsing and printing only; the work is in `genzoo.translation`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

out = Console(soft_wrap=True)  # long paths stay whole


def translate_command(
    run: Annotated[Path, typer.Argument(help="A run folder of a translation model (pix2pix, cyclegan, stargan, swap).", show_default=False)],
    inputs: Annotated[list[Path], typer.Argument(help="Image files or folders of images (searched recursively).", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--out", help="Folder for the translated images (same relative names, .png).")] = Path("translated"),
    to: Annotated[Optional[str], typer.Option(help="Target domain: a, b, a domain's name, or a class name or index for StarGAN \\[default: b].", show_default=False)] = None,
    grid: Annotated[Optional[Path], typer.Option(help="Also write a PNG of each input beside its translation.", show_default=False)] = None,
    ema: Annotated[Optional[bool], typer.Option("--ema/--no-ema", help="Use the EMA weights \\[default: when the run has them].", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per batch.")] = 64,
) -> None:
    """Translate images with a trained model, each resized and centre-cropped to its size, into PNGs under OUT.

    Examples: genzoo translate runs/pix2pix edges/ -o photos/;  genzoo translate runs/cyclegan boot.png --to a -o out/;
    genzoo translate runs/stargan shoes/ --to Sandal -o sandals/
    """
    import torch

    from genzoo.report.grids import output_path, save_grid
    from genzoo.translation import parse_domain, translate_files

    grid = output_path(grid) if grid is not None else None  # a missing folder fails before any work
    written, images, outputs = translate_files(run, inputs, output, parse_domain(to), ema, batch_size)
    out.print(f"wrote {len(written)} translated image{'s' * (len(written) != 1)} to [bold]{output}[/]", highlight=False)
    if grid is not None:
        save_grid(torch.stack([images, outputs], dim=1).flatten(0, 1), grid, 2 * min(4, len(images)))
        out.print(f"wrote inputs beside translations to [bold]{grid}[/]", highlight=False)

"""`genzoo render RUN`: a trained model's object or scene seen all around (argument parsing and printing only;
the work is in the family's `render`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from genzoo.errors import GenzooError

out = Console(soft_wrap=True)  # long paths stay whole
err = Console(stderr=True)


def render(
    run: Annotated[Path, typer.Argument(help="A run folder of a family that renders (nerf, chairs).")],
    orbit: Annotated[int, typer.Option("--orbit", min=1, max=3600, help="Frames in one turn around the object.")] = 60,
    elevation: Annotated[float, typer.Option(min=-89.0, max=89.0, help="Camera elevation in degrees.")] = 30.0,
    output: Annotated[Path, typer.Option("-o", "--output", help="A .gif (animation) or .png (one grid of the frames).")] = Path("orbit.gif"),
    size: Annotated[Optional[int], typer.Option(min=8, max=2048, help="Frame side in pixels (nerf) \\[default: the run's].", show_default=False)] = None,
    chair: Annotated[Optional[int], typer.Option(min=0, help="The chair to turn (chairs) \\[default: 0].", show_default=False)] = None,
    fps: Annotated[float, typer.Option(min=1.0, max=50.0, help="Frames per second of the GIF.")] = 20.0,
    ema: Annotated[Optional[bool], typer.Option("--ema/--no-ema", help="Use the EMA weights \\[default: when the run has them].", show_default=False)] = None,
) -> None:
    """Turn a trained model's object or scene in front of the camera: one frame per step of a full orbit.

    Examples: genzoo render runs/nerf --orbit 60 -o orbit.gif;  genzoo render runs/chairs --chair 7 --orbit 24 -o chair.png
    """
    import inspect

    import torch
    from rich.progress import track

    from genzoo.loading import load
    from genzoo.models.base import CanRender, capabilities
    from genzoo.report.grids import output_path, save_gif, save_grid

    if output.suffix.lower() not in ("", ".gif", ".png"):
        raise GenzooError(f"-o {str(output)!r} is neither a .gif nor a .png; name the file orbit.gif or orbit.png.")
    output = output_path(output)
    model = load(run, ema=ema)
    if not isinstance(model, CanRender):
        raise GenzooError(f"{run} is a {type(model).__name__} run, which does not render views of an object "
                          f"(it can: {', '.join(capabilities(model))}); train nerf or chairs.")
    accepted = inspect.signature(model.render).parameters
    options = {}
    for name, value in {"size": size, "chair": chair}.items():
        if value is not None:
            if name not in accepted:
                raise GenzooError(f"a {type(model).__name__} model has no {name}; drop --{name}.")
            options[name] = value
    azimuth = torch.arange(orbit) * (2 * math.pi / orbit)
    frames = torch.cat([model.render(azimuth[i : i + 1], torch.full((1,), math.radians(elevation)), **options)
                        for i in track(range(orbit), description="rendering", transient=True, disable=not err.is_terminal)])
    if output.suffix.lower() == ".gif":
        save_gif(frames, output, fps)
    else:
        save_grid(frames, output, columns=min(orbit, 12))
    out.print(f"wrote {orbit} views{' (EMA weights)' if getattr(model, 'uses_ema', False) else ''} to [bold]{output}[/]")

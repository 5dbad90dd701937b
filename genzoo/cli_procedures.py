"""`genzoo run PROCEDURE`, `genzoo stylize`, `genzoo attack`: jobs that optimise an input against fixed
networks (argument parsing and printing only; the work is in `genzoo.procedures`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from genzoo.errors import GenzooError

out = Console(soft_wrap=True)  # long paths stay whole


def run_command(
    procedure: Annotated[str, typer.Argument(help="A procedure (`genzoo list`), e.g. invert.")],
    settings: Annotated[Optional[list[str]], typer.Argument(help="Its settings as key=value, e.g. run=runs/dcgan steps=300.", show_default=False)] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder \\[default: runs/PROCEDURE].")] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Run a procedure: optimise an input against fixed, trained networks; no weights are trained.

    Examples: genzoo run invert run=runs/dcgan num_images=8;  genzoo run invert run=runs/vae images=photos/ loss=mae
    """
    from genzoo.api import run_procedure

    print_procedure(run_procedure(procedure, out_dir, overrides=list(settings or []), progress=progress))


def stylize(
    content: Annotated[str, typer.Argument(help="Content image: a file or a bundled photo (skimage:astronaut, sklearn:china, matplotlib:grace_hopper).")],
    styles: Annotated[Optional[list[str]], typer.Argument(help="One or more style images (files, skimage:gravel, opencv:starry_night).", show_default=False)] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file for the result.")] = Path("stylized.png"),
    network: Annotated[str, typer.Option(help="random (multi-scale random filters, no weights) or vgg19.")] = "random",
    weights: Annotated[Optional[str], typer.Option(help="VGG-19 weights file (torchvision's vgg19-dcbb9e9d.pth) \\[default: torchvision's cache].", show_default=False)] = None,
    size: Annotated[int, typer.Option(help="Longer side of the result in pixels.")] = 256,
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = 300,
    optimizer: Annotated[str, typer.Option(help="lbfgs or adam.")] = "lbfgs",
    style_weight: Annotated[Optional[float], typer.Option(help="beta \\[default: the network's].", show_default=False)] = None,
    content_weight: Annotated[float, typer.Option(help="alpha.")] = 1.0,
    tv_weight: Annotated[float, typer.Option(help="Total-variation weight.")] = 0.0,
    init: Annotated[str, typer.Option(help="Start from the content image or from noise.")] = "content",
    preserve_colour: Annotated[bool, typer.Option("--preserve-colour", help="Transfer luminance only; keep the content's colours.")] = False,
    texture: Annotated[bool, typer.Option("--texture", help="Texture synthesis: every image given is a style, no content.")] = False,
    sweep: Annotated[Optional[str], typer.Option(help="Comma list of style weights: one result each, as a grid.", show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the noise start.")] = 0,
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", help="Run folder with the report \\[default: runs/stylize, runs/stylize-2, ...].", show_default=False)] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Neural style transfer (Gatys et al. 2016): CONTENT painted in the style of STYLE... by optimising the image.

    Examples: genzoo stylize skimage:chelsea skimage:gravel -o cat.png;  genzoo stylize --texture skimage:brick -o brick.png;
    genzoo stylize photo.jpg starry.jpg --network vgg19 --weights vgg19-dcbb9e9d.pth --preserve-colour
    """
    from genzoo.procedures.stylize import stylize as run_stylize

    styles = list(styles or [])
    if not styles and not texture:
        raise GenzooError("give a style image after the content image (or --texture to synthesise the content image's texture).")
    folder = run_stylize(None if texture else content, [content, *styles] if texture else styles, output,
                         out=run_dir, progress=progress, network=network, weights=weights, size=size, steps=steps,
                         optimizer=optimizer, style_weight=style_weight, content_weight=content_weight, tv_weight=tv_weight,
                         init=init, preserve_colour=preserve_colour, seed=seed,
                         sweep=None if sweep is None else numbers(sweep, "--sweep"))
    print_procedure(folder)


def attack(
    target: Annotated[str, typer.Argument(help="fmnist (the shipped Fashion-MNIST network) or a classifier run folder.")] = "fmnist",
    method: Annotated[str, typer.Option(help="fgsm, bim or pgd.")] = "pgd",
    norm: Annotated[str, typer.Option(help="linf or l2.")] = "linf",
    eps: Annotated[float, typer.Option(help="Radius in [0, 1] pixel units (L-inf: per pixel).")] = 0.1,
    steps: Annotated[int, typer.Option(help="Iterations of bim and pgd.")] = 40,
    step_size: Annotated[Optional[float], typer.Option(help="Step in pixel units \\[default: 2.5 eps / steps].", show_default=False)] = None,
    restarts: Annotated[int, typer.Option(help="Random starts of pgd; the strongest is kept per image.")] = 1,
    targeted: Annotated[Optional[str], typer.Option(help="Push every image into this class (index or name) \\[default: any wrong class].", show_default=False)] = None,
    curve: Annotated[Optional[str], typer.Option(help="Comma list of radii for the accuracy curve \\[default: 0, eps/2, eps, 2 eps].", show_default=False)] = None,
    num_images: Annotated[int, typer.Option("--num-images", "-n", help="Test images to attack.")] = 500,
    seed: Annotated[int, typer.Option(help="Seed of the image choice and the random starts.")] = 0,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder \\[default: runs/attack, runs/attack-2, ...].", show_default=False)] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Adversarial examples against a classifier: accuracy before and after, accuracy against eps, pictures.

    Examples: genzoo attack fmnist --method pgd --eps 0.1;  genzoo attack runs/classifier --method fgsm --targeted Sneaker
    """
    from genzoo.procedures.attack import attack as run_attack

    radii = None if curve is None else numbers(curve, "--curve")
    folder = run_attack(target, out_dir, progress=progress, method=method, norm=norm, eps=eps, steps=steps,
                        step_size=step_size, restarts=restarts, targeted=targeted, curve=radii, num_images=num_images, seed=seed)
    print_procedure(folder)


def print_procedure(folder) -> None:  # noqa: ANN001
    import json

    def lines(values: dict, prefix: str = ""):  # noqa: ANN202  (nested results as dotted keys)
        for key, value in values.items():
            if isinstance(value, dict):
                yield from lines(value, f"{prefix}{key}.")
            elif value not in ([], None):
                yield f"{prefix}{key}", f"{value:.4g}" if isinstance(value, float) else str(value)

    result = folder.path / "result.json"
    if result.is_file():
        for key, value in lines(json.loads(result.read_text(encoding="utf-8"))):
            out.print(f"{key + ':':<16} {value}", highlight=False)
    out.print(f"run folder:  [bold]{folder.path}[/]")
    out.print(f"report:      {folder.report}")


def numbers(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise GenzooError(f"{option} {text!r} is not a comma list of numbers, e.g. {option} 0,0.05,0.1.") from None

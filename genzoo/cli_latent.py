"""`genzoo latent ...`: pictures of a trained model's latent space (argument parsing and printing only;
the work is in `genzoo.latent`)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from genzoo.errors import GenzooError
from genzoo.report.grids import output_path, save_grid

latent_app = typer.Typer(
    help="Pictures of a trained model's latent space: interpolations, class arithmetic, traversals, "
         "reconstructions, domain swaps, style mixing and truncation sweeps.\n\n"
         "interpolate, arithmetic and traverse work for families that sample codes from a prior (gan, vae, glo); "
         "reconstruct for those that reconstruct (autoencoder, vae, glo, swap); swap for the swap autoencoder; "
         "mix and psi for stylegan. "
         "Example: genzoo latent interpolate runs/dcgan -o walk.png",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
out = Console(soft_wrap=True)  # long paths stay whole

Run = Annotated[Path, typer.Argument(help="A run folder written by `genzoo train`.", show_default=False)]
Ema = Annotated[Optional[bool], typer.Option("--ema/--no-ema", help="Use the EMA weights \\[default: when the run has them].", show_default=False)]
Seed = Annotated[int, typer.Option(help="Random seed of the codes.")]


def _command(name: str | None = None):  # noqa: ANN202
    """`latent_app.command`, with the docstring's paragraphs joined into single lines for the rich help
    (which keeps the docstring's line breaks)."""

    def register(function):  # noqa: ANN001, ANN202
        paragraphs = inspect.cleandoc(function.__doc__ or "").split("\n\n")
        function.__doc__ = "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)
        return latent_app.command(name)(function)

    return register


def _load(run: Path, ema: bool | None):  # noqa: ANN202
    """The run's model, checked to have a latent space before any work is done."""
    from genzoo.loading import load
    from genzoo.latent import latent_space

    model = load(run, ema=ema)
    latent_space(model)
    return model


def _ema_note(model) -> str:  # noqa: ANN001
    return " (EMA weights)" if getattr(model, "uses_ema", False) else ""


@_command()
def interpolate(
    run: Run,
    rows: Annotated[int, typer.Option(min=1, max=256, help="Rows: pairs of random codes.")] = 8,
    steps: Annotated[int, typer.Option(min=2, max=256, help="Images per row, from one code to the other.")] = 10,
    spherical: Annotated[Optional[bool], typer.Option("--spherical/--linear", help="Great-circle path (slerp; White 2016) or straight line (lerp) \\[default: slerp in z, lerp in w].", show_default=False)] = None,
    space: Annotated[str, typer.Option(help="z: the prior's codes; w: StyleGAN's mapped codes (its intermediate latent space).")] = "z",
    seed: Seed = 0,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file for the grid.")] = Path("interpolation.png"),
    ema: Ema = None,
) -> None:
    """Walk between random latent codes: one row per pair, the images decoded along the way.

    Spherical interpolation (the default in z) keeps the codes at the norm the prior gives them; a straight
    line passes through codes of smaller norm than any seen in training (White 2016). In StyleGAN's w
    (--space w) the default is a straight line, as in its paper. A conditional GAN keeps one class per row.

    Examples:

    genzoo latent interpolate runs/dcgan

    genzoo latent interpolate runs/vae --rows 4 --steps 12 --linear -o lerp.png

    genzoo latent interpolate runs/stylegan --space w
    """
    import torch

    from genzoo.latent import interpolation_grid, latent_space

    output = output_path(output)
    model = _load(run, ema)
    latent_space(model, space)  # a model without w fails before any work
    images = interpolation_grid(model, rows, steps, spherical, torch.Generator().manual_seed(seed), space)  # (R * S, C, H, W)
    save_grid(images, output, steps)
    path = "spherical (slerp)" if (space == "z" if spherical is None else spherical) else "linear (lerp)"
    out.print(f"wrote {rows} {path} interpolations in {space} of {steps} steps{_ema_note(model)} to [bold]{output}[/]")


@_command()
def mix(
    run: Run,
    rows: Annotated[int, typer.Option(min=1, max=64, help="Images of source B (one row each per group of layers).")] = 3,
    columns: Annotated[int, typer.Option(min=1, max=64, help="Images of source A (the top row).")] = 5,
    layers: Annotated[Optional[str], typer.Option(help="Style layers to copy from B, e.g. 0-3 or 0,2,5 \\[default: three blocks: coarse, middle, fine].", show_default=False)] = None,
    psi: Annotated[Optional[float], typer.Option(help="Truncation in w of both sources (1: none).", show_default=False)] = None,
    seed: Seed = 0,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file for the grid.")] = Path("mixing.png"),
    ema: Ema = None,
) -> None:
    """Style mixing (Karras et al. 2019, Fig. 3): images of source A with some styles copied from source B.

    The top row holds the A images; below, one block per group of style layers, each row starting with a
    B image followed by the A images with that group's styles taken from B. Coarse styles (the 4-8 px
    layers) carry pose and shape, middle ones smaller features, fine ones colour and texture (a network
    under 64 px has its resolutions split in three). --layers picks the layers to copy instead (0 is the
    4 x 4 constant's; two per resolution).

    Examples:

    genzoo latent mix runs/stylegan

    genzoo latent mix runs/stylegan --layers 0-3 --rows 4 --columns 8 --psi 0.7
    """
    import torch

    from genzoo.style_space import check_style_space, parse_layers, style_mixing_grid

    output = output_path(output)
    model = _load(run, ema)
    check_style_space(model)
    chosen = parse_layers(layers, model) if layers is not None else None
    images, width, blocks = style_mixing_grid(model, rows, columns, chosen, psi, torch.Generator().manual_seed(seed))
    save_grid(images, output, width)
    out.print(f"wrote a style-mixing grid{_ema_note(model)} (top row: A; blocks of B rows with their "
              f"{'; '.join(blocks)} styles) to [bold]{output}[/]", highlight=False)


@_command("psi")
def psi_command(
    run: Run,
    rows: Annotated[int, typer.Option(min=1, max=256, help="Codes, one row each.")] = 4,
    values: Annotated[str, typer.Option(help="Comma-separated psi values, one column each.")] = "0,0.25,0.5,0.75,1",
    seed: Seed = 0,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file for the grid.")] = Path("psi.png"),
    ema: Ema = None,
) -> None:
    """The truncation trick in w (Karras et al. 2019, Fig. 8): each row one code, pulled towards the mean w
    by w_avg + psi (w - w_avg) for each psi; psi = 0 is the mean image, 1 the code itself.

    Example: genzoo latent psi runs/stylegan --values 0,0.5,0.7,1
    """
    import torch

    from genzoo.style_space import check_style_space, psi_sweep

    try:
        psis = tuple(float(v) for v in values.split(","))
    except ValueError:
        raise GenzooError(f"--values {values!r} is not a comma-separated list of numbers such as 0,0.5,1.") from None
    output = output_path(output)
    model = _load(run, ema)
    check_style_space(model)
    save_grid(psi_sweep(model, rows, psis, torch.Generator().manual_seed(seed)), output, len(psis))
    out.print(f"wrote {rows} codes at psi = {', '.join(f'{p:g}' for p in psis)}{_ema_note(model)} to [bold]{output}[/]",
              highlight=False)


@_command("arithmetic")
def arithmetic_command(
    run: Run,
    a: Annotated[str, typer.Option("--a", help="Class a of a - b + c: an index or a name (e.g. Trouser).", show_default=False)],
    b: Annotated[str, typer.Option("--b", help="Class b, subtracted.", show_default=False)],
    c: Annotated[str, typer.Option("--c", help="Class c, added.", show_default=False)],
    num: Annotated[int, typer.Option("--samples", "--num", min=1, max=1_000_000, help="Samples (generated, or real images to encode) that form the class means.")] = 2000,
    exemplars: Annotated[Optional[int], typer.Option(min=0, help="Codes averaged per class: the N the classifier is most sure of (0: all) \\[default: 3 for a GAN, as in the paper; all for encoded real images].", show_default=False)] = None,
    seed: Seed = 0,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file for the grid.")] = Path("arithmetic.png"),
    ema: Ema = None,
) -> None:
    """Latent arithmetic on class means: mean(a) - mean(b) + mean(c) (Radford et al. 2016, Fig. 7).

    The grid's first row is a, b, c and the result; the next two rows are the result with uniform noise
    of scale 0.25 added to its code, as in the DCGAN paper. A model that encodes (vae) averages the codes
    of real images of the run's dataset per label; a GAN labels its own samples with the fmnist
    classifier and averages, per class, the codes of the 3 samples the classifier is most sure of (the
    paper picked 3 exemplars by hand; the mean of many codes sits near the origin and decodes to a faint
    average image).
    Classes are indices or Fashion-MNIST names (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal,
    Shirt, Sneaker, Bag, Ankle boot; case and punctuation ignored).

    Examples:

    genzoo latent arithmetic runs/dcgan --a Sneaker --b Sandal --c Bag

    genzoo latent arithmetic runs/vae --a 1 --b 0 --c 3 --samples 5000
    """
    import torch

    from genzoo.config import build_config
    from genzoo.data import build_dataset
    from genzoo.data.fashion_mnist import CLASSES
    from genzoo.latent import arithmetic, class_mean_latents
    from genzoo.train.checkpoint import RunFolder

    output = output_path(output)
    model = _load(run, ema)
    generator = torch.Generator().manual_seed(seed)
    data_config = build_config(RunFolder(run).read_config()).data
    data, names = None, None
    if hasattr(model, "encode"):
        data = build_dataset(data_config)
        for note in data.notes:
            out.print(f"[dim]{note}[/]")
        if data.labels is not None:
            names = CLASSES if data_config.name == "fashion-mnist" else None
    elif getattr(model, "conditional", False) and data_config.name == "fashion-mnist":
        names = CLASSES
    means = class_mean_latents(model, num, generator, data=data, names=names, check=(a, b, c),
                               exemplars="auto" if exemplars is None else exemplars or None)
    classes = {role: means.index(value) for role, value in (("a", a), ("b", b), ("c", c))}
    empty = [means.names[k] for k in dict.fromkeys(classes.values()) if means.counts[k] == 0]
    if empty:
        raise GenzooError(f"none of the {num} samples fell in class {' or '.join(map(repr, empty))} ({means.source}); "
                          f"draw more with --samples {max(10 * num, 2000)}, or pick another class.")
    out.print(f"class means from {means.source}{_ema_note(model)}:")
    for role, k in classes.items():
        of = f" of {int(means.available[k])}" if means.available[k] != means.counts[k] else ""
        out.print(f"  {role}: class {k} {means.names[k]!r}: mean of {int(means.counts[k])}{of} codes", highlight=False)
    images = arithmetic(model, a, b, c, means=means, generator=generator)  # (4 + 8, C, H, W)
    save_grid(images, output, 4)
    names_abc = [means.names[classes[r]] for r in "abc"]
    out.print(f"wrote {names_abc[0]} - {names_abc[1]} + {names_abc[2]} (row 1: a, b, c, result; rows 2-3: result "
              f"with noise) to [bold]{output}[/]", highlight=False)


@_command()
def traverse(
    run: Run,
    dims: Annotated[int, typer.Option(min=1, max=1024, help="Latent dimensions to show, one row each (the first N).")] = 8,
    steps: Annotated[int, typer.Option(min=2, max=256, help="Values per dimension.")] = 9,
    span: Annotated[float, typer.Option("--range", help="Each dimension goes from -RANGE to +RANGE.")] = 3.0,
    seed: Seed = 0,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file for the grid.")] = Path("traversal.png"),
    ema: Ema = None,
) -> None:
    """Latent traversal: one row per latent dimension, swept from -range to +range, the others fixed.

    All rows start from the same random code (--seed); row d sets dimension d to each value in turn.
    For a VAE this shows what each latent dimension has learned to control (Higgins et al. 2017);
    it works for GANs too, where single dimensions of z rarely mean one thing.

    Examples:

    genzoo latent traverse runs/vae

    genzoo latent traverse runs/dcgan --dims 4 --steps 11 --range 2
    """
    import torch

    from genzoo.latent import traversal

    output = output_path(output)
    model = _load(run, ema)
    images, rows = traversal(model, dims, steps, span, torch.Generator().manual_seed(seed))
    save_grid(images, output, steps)
    out.print(f"wrote a traversal of {rows} latent dimensions{' (all of them)' if rows < dims else ''}, "
              f"{steps} values in [-{span:g}, {span:g}]{_ema_note(model)}, to [bold]{output}[/]", highlight=False)


def _real_batch(run: Path, n: int, seed: int) -> dict:
    """n real images of the run's dataset (the same n for the same seed)."""
    import torch

    from genzoo.config import build_config
    from genzoo.data import build_dataset
    from genzoo.train.checkpoint import RunFolder

    data = build_dataset(build_config(RunFolder(run).read_config()).data)
    for note in data.notes:
        out.print(f"[dim]{note}[/]")
    indices = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[: min(n, len(data))]
    return data.batch(indices)


@_command("reconstruct")
def reconstruct_command(
    run: Run,
    n: Annotated[int, typer.Option("-n", min=1, max=1024, help="Real images to reconstruct.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed that picks the images.")] = 0,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file for the grid.")] = Path("reconstructions.png"),
    ema: Ema = None,
) -> None:
    """Real images of the run's dataset beside their reconstructions (input, reconstruction, ...).

    For an autoencoder or VAE the reconstruction is decoder(encoder(x)); a GLO model has no encoder and
    finds each code by optimisation (model.encode_steps steps, with a progress bar); a swap autoencoder
    reconstructs domain a with its own decoder.

    Examples:

    genzoo latent reconstruct runs/vae -n 16

    genzoo latent reconstruct runs/glo -o glo-recon.png
    """
    import torch

    from genzoo.loading import load
    from genzoo.models.base import CanReconstruct, capabilities

    output = output_path(output)
    model = load(run, ema=ema)
    if not isinstance(model, CanReconstruct):
        raise GenzooError(f"a {type(model).__name__} model does not reconstruct images (it can: "
                          f"{', '.join(capabilities(model))}); use a run of autoencoder, vae, glo or swap.")
    batch = _real_batch(run, n, seed)
    x = batch["image"] if "image" in batch else batch["a"]  # (n, C, H, W)
    options = {}
    parameters = inspect.signature(model.reconstruct).parameters
    if "labels" in parameters and getattr(model, "conditional", False):
        options["labels"] = batch["label"]
    if "progress" in parameters:  # encoders by optimisation (GLO) show their progress
        options["progress"] = True
    x_hat = model.reconstruct(x, **options)
    pairs = torch.stack([x, x_hat], dim=1).flatten(0, 1)  # (2n, C, H, W): input, reconstruction, ...
    save_grid(pairs, output)
    mse = ((x_hat - x) / 2).pow(2).mean().item()  # images mapped to [0, 1]
    out.print(f"wrote {len(x)} inputs beside their reconstructions{_ema_note(model)} (MSE {mse:.4f} on [0, 1]) "
              f"to [bold]{output}[/]", highlight=False)


@_command("swap")
def swap_command(
    run: Run,
    n: Annotated[int, typer.Option("-n", min=1, max=1024, help="Images of each domain.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed that picks the images.")] = 0,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file for the grid.")] = Path("swaps.png"),
    ema: Ema = None,
) -> None:
    """Domain swaps of a two-domain model: each row is a, a -> b, b, b -> a.

    For the swap autoencoder, a -> b is b's decoder applied to the shared encoder's code of a.

    Example: genzoo latent swap runs/swap -n 8
    """
    from genzoo.loading import load
    from genzoo.models.base import CanTranslate, capabilities, swap_rows

    output = output_path(output)
    model = load(run, ema=ema)
    if not isinstance(model, CanTranslate):
        raise GenzooError(f"a {type(model).__name__} model does not translate between domains (it can: "
                          f"{', '.join(capabilities(model))}); use a run of the swap family.")
    batch = _real_batch(run, n, seed)
    save_grid(swap_rows(model, batch["a"], batch["b"]), output, 4)  # rows a, a -> b, b, b -> a
    out.print(f"wrote {len(batch['a'])} swaps (a, a -> b, b, b -> a){_ema_note(model)} to [bold]{output}[/]", highlight=False)

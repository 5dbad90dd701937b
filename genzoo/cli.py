"""The `genzoo` command: argument parsing and printing only; the work is in the library."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from genzoo.errors import GenzooError

app = typer.Typer(
    name="genzoo",
    help="Train, sample and compare deep generative models. Start with `genzoo demo` or `genzoo list`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
out = Console()
err = Console(stderr=True)

Overrides = Annotated[Optional[list[str]], typer.Argument(help="Dotted overrides, e.g. train.batch_size=128 model.objective=minimax.", show_default=False)]


@app.command("list")
def list_command() -> None:
    """List the families, procedures, presets, datasets, metrics and feature networks genzoo has."""
    from genzoo.config import PRESET_DIR, list_presets
    from genzoo.models import capabilities
    from genzoo.registry import DATASETS, FEATURES, METRICS, MODELS, PROCEDURES

    families = Table("family", "makes", "phases (per step)", "capabilities", "about", title="families (genzoo train FAMILY)")
    for name, family in MODELS.items():  # read from the classes: nothing is built
        families.add_row(name, family.modality, family.phase_summary, ", ".join(capabilities(family)), _first_line(family.__module__))
    procedures = Table("procedure", "about", title="procedures (genzoo run PROCEDURE key=value ...)")
    for name, procedure in PROCEDURES.items():
        procedures.add_row(name, _first_line(procedure.__module__))
    presets = Table("preset", "about", title="presets (genzoo train PRESET)")
    for name in list_presets():
        presets.add_row(name, _first_comment(PRESET_DIR / f"{name}.yaml"))
    datasets = Table("dataset", "about", title="datasets (data.name=...)")
    for name, loader in DATASETS.items():
        datasets.add_row(name, (loader.__doc__ or sys.modules[loader.__module__].__doc__ or "").strip().splitlines()[0])
    metrics = Table("metric", "about", title="metrics (genzoo eval --metrics ...)")
    for name, function in METRICS.items():
        metrics.add_row(name, (function.__doc__ or "").strip().splitlines()[0])
    features = Table("feature network", "about", title="feature networks (genzoo eval --extractor ...)")
    for name, loader in FEATURES.items():
        features.add_row(name, (loader.__doc__ or "").strip().splitlines()[0])
    for table in (families, procedures, presets, datasets, metrics, features):
        out.print(table)


@app.command()
def train(
    preset: Annotated[str, typer.Argument(help="A preset name (`genzoo list`), a family name, or a YAML file.")],
    overrides: Overrides = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder \\[default: runs/PRESET].")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    steps: Annotated[Optional[int], typer.Option(help="Shortcut for train.steps=N.")] = None,
    data: Annotated[Optional[str], typer.Option(help="Shortcut for data.name=NAME.")] = None,
    data_root: Annotated[Optional[str], typer.Option(help="Shortcut for data.root=PATH (a local copy of the data).")] = None,
    download: Annotated[bool, typer.Option("--download", help="Let torchvision download the dataset when no local copy is found.")] = False,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Train a model. Example: genzoo train dcgan train.steps=5000 --out runs/dcgan"""
    from genzoo.api import train as train_run

    items = list(overrides or []) + [f"data.root={data_root}"] * (data_root is not None) + ["data.download=true"] * download
    run = train_run(preset, out_dir, data=data, steps=steps, overrides=items, resume=resume, progress=progress)
    _print_run(run)


@app.command()
def resume(
    run: Annotated[Path, typer.Argument(help="A run folder written by `genzoo train`.")],
    overrides: Overrides = None,
    steps: Annotated[Optional[int], typer.Option(help="Train until this many steps in all (extends the run).")] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Continue a stopped or finished run from its last checkpoint, with its saved config."""
    from genzoo.api import train as train_run
    from genzoo.train.checkpoint import RunFolder

    RunFolder(run).read_config()
    _print_run(train_run(run / "config.json", run, steps=steps, overrides=list(overrides or []), resume=True, progress=progress))


@app.command()
def sample(
    run: Annotated[Path, typer.Argument(help="A run folder written by `genzoo train`.")],
    n: Annotated[int, typer.Option("-n", min=1, max=4096, help="Number of images.")] = 64,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file for the image grid.")] = Path("samples.png"),
    ema: Annotated[Optional[bool], typer.Option("--ema/--no-ema", help="Use the EMA weights \\[default: when the run has them].", show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the samples.")] = 0,
    labels: Annotated[Optional[str], typer.Option(help="Class labels for a conditional model: one index for all, or a comma list of n \\[default: every class in turn].", show_default=False)] = None,
    truncation: Annotated[Optional[float], typer.Option(help="Truncate z to |z| <= T (GANs; 0.5 to 1 trades variety for quality).", show_default=False)] = None,
    steps: Annotated[Optional[int], typer.Option(help="Sampling steps of a diffusion model \\[default: the run's].", show_default=False)] = None,
    sampler: Annotated[Optional[str], typer.Option(help="Diffusion sampler: ddpm or ddim \\[default: the run's].", show_default=False)] = None,
    eta: Annotated[Optional[float], typer.Option(help="DDIM noise: 0 deterministic, 1 like DDPM \\[default: the run's].", show_default=False)] = None,
    guidance: Annotated[Optional[float], typer.Option(help="Classifier-free guidance scale of a conditional diffusion model (1 = conditional).", show_default=False)] = None,
) -> None:
    """Draw new images from a trained model and save them as one grid.

    Examples: genzoo sample runs/dcgan -n 64 -o grid.png --truncation 0.7;  genzoo sample runs/cgan --labels 7;
    genzoo sample runs/ddpm --sampler ddim --steps 50;  genzoo sample runs/ddpm-cfg --guidance 3
    """
    import inspect
    import torch

    from genzoo.loading import load
    from genzoo.models.base import CanGenerate, capabilities
    from genzoo.report.grids import output_path, save_grid

    model = load(run, ema=ema)
    if not isinstance(model, CanGenerate):
        raise GenzooError(f"{run} is a {type(model).__name__} run, which cannot generate new images "
                          f"(it can: {', '.join(capabilities(model))}); train a generative family such as vae or gan.")
    options = {}
    accepted = inspect.signature(model.generate).parameters
    for name, value in {"truncation": truncation, "steps": steps, "sampler": sampler, "eta": eta, "guidance": guidance}.items():
        if value is not None:
            if name not in accepted:
                raise GenzooError(f"a {type(model).__name__} model has no {name}; drop --{name}.")
            options[name] = value
    if "progress" in accepted:
        options["progress"] = err.is_terminal
    if labels is not None:
        try:
            values = [int(v) for v in labels.split(",")]
        except ValueError:
            raise GenzooError(f"--labels {labels!r} is not a class index or a comma list of them, e.g. --labels 3.") from None
        options["labels"] = torch.tensor(values * n if len(values) == 1 else values)
    images = model.generate(n, generator=torch.Generator().manual_seed(seed), **options)  # (n, C, H, W)
    output = output_path(output)
    save_grid(images, output)
    out.print(f"wrote {n} samples{' (EMA weights)' if getattr(model, 'uses_ema', False) else ''} to [bold]{output}[/]")


@app.command("eval")
def eval_command(
    run: Annotated[Optional[Path], typer.Argument(help="A run folder written by `genzoo train`.", show_default=False)] = None,
    metrics: Annotated[str, typer.Option(help="Comma-separated: fid, kid, is, pr, dc, variety, recon; accuracy, robust-accuracy (classifier and dann runs); physics, fpd, kpd, calo-auc, calo-response (calorimeter showers).")] = "fid,kid,is,pr,dc,variety",
    num_samples: Annotated[int, typer.Option("--num-samples", "-n", min=1, help="Generated images to score.")] = 10_000,
    num_real: Annotated[Optional[int], typer.Option(min=1, help="Real images \\[default: max(num-samples, 10000), capped at the split].", show_default=False)] = None,
    extractor: Annotated[str, typer.Option(help="Feature network: fmnist (offline, shipped) or inception (FID Inception-v3).")] = "fmnist",
    inception_weights: Annotated[Optional[str], typer.Option(help="Local pt_inception-2015-12-05 weights file for --extractor inception.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Reference split of the run's dataset (train, test, all) \\[default: the run's].", show_default=False)] = None,
    ema: Annotated[Optional[bool], typer.Option("--ema/--no-ema", help="Use the EMA weights \\[default: when the run has them].", show_default=False)] = None,
    real: Annotated[Optional[Path], typer.Option(help="Folder of real images (with --fake, instead of a run).")] = None,
    fake: Annotated[Optional[Path], typer.Option(help="Folder of generated images (with --real).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the samples and subsets.")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per feature batch.")] = 500,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the scores with their protocols to this JSON file.")] = None,
) -> None:
    """Score a run's samples (FID, KID, IS, precision/recall, density/coverage, class variety), or two folders.

    Every score is printed with its protocol: feature network and weights hash, image counts, reference, EMA.
    Examples: genzoo eval runs/dcgan --metrics fid,pr -n 5000;  genzoo eval --real photos/ --fake samples/
    """
    import json

    from genzoo.metrics import evaluate, evaluate_folders

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    if json_out is not None and json_out.is_dir():  # checked before minutes of scoring, not after
        raise GenzooError(f"--json {str(json_out)!r} is a folder; give a file name such as scores.json.")
    if json_out is not None and not json_out.parent.is_dir():
        raise GenzooError(f"folder {str(json_out.parent)!r} does not exist; create it or choose another --json.")
    if (real is None) != (fake is None):
        raise GenzooError("--real and --fake go together: give both folders, or a run folder instead.")
    if real is not None:
        if run is not None:
            raise GenzooError("give either a run folder or --real/--fake folders, not both.")
        scores = evaluate_folders(real, fake, names, num_samples=None if num_samples == 10_000 else num_samples,
                                  extractor=extractor, extractor_weights=inception_weights, batch_size=batch_size, seed=seed)
    elif run is None:
        raise GenzooError("give a run folder to evaluate, or --real DIR --fake DIR.")
    else:
        scores = evaluate(run, names, split=split, num_samples=num_samples, num_real=num_real, extractor=extractor,
                          extractor_weights=inception_weights, ema=ema, batch_size=batch_size, seed=seed)
    table = Table("metric", "value", "± std", "n_real", "n_fake", title="scores")
    for score in scores:
        table.add_row(score.name, f"{score.value:.4f}", "" if score.std is None else f"{score.std:.4f}",
                      str(score.protocol.get("n_real", "")), str(score.protocol.get("n_fake", "")))
    out.print(table)
    first = scores[0].protocol if scores else {}
    out.print(f"protocol: extractor {first.get('extractor')} (sha256 {str(first.get('extractor_sha256'))[:12]}…), "
              f"resize: {first.get('resize')}; reference: {json.dumps(first.get('reference'))}; "
              f"EMA: {first.get('ema')}; seed {first.get('seed')}", soft_wrap=True, highlight=False)
    if json_out is not None:
        from genzoo.io import atomic_write_text

        atomic_write_text(json_out, json.dumps([s.as_dict() for s in scores], indent=2) + "\n")
        out.print(f"wrote {json_out}")


@app.command()
def report(run: Annotated[Path, typer.Argument(help="A run folder written by `genzoo train`.")]) -> None:
    """Write report.html in the run folder: loss curves, sample grids, config."""
    from genzoo.report import write_report
    from genzoo.train.checkpoint import RunFolder

    folder = RunFolder(run)
    folder.read_config()
    out.print(f"wrote [bold]{write_report(folder)}[/]")


@app.command("run")
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

    _print_procedure(run_procedure(procedure, out_dir, overrides=list(settings or []), progress=progress))


@app.command()
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
                         sweep=None if sweep is None else _numbers(sweep, "--sweep"))
    _print_procedure(folder)


@app.command()
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

    radii = None if curve is None else _numbers(curve, "--curve")
    folder = run_attack(target, out_dir, progress=progress, method=method, norm=norm, eps=eps, steps=steps,
                        step_size=step_size, restarts=restarts, targeted=targeted, curve=radii, num_images=num_images, seed=seed)
    _print_procedure(folder)


@app.command()
def demo(
    overrides: Overrides = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder; an earlier demo there is replaced.")] = Path("runs/demo"),
    steps: Annotated[Optional[int], typer.Option(help="Training steps \\[default: the demo preset's, about 2 minutes on 2 cores].")] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Train a small DCGAN on the embedded Fashion-MNIST sample and write samples and a report."""
    from genzoo.api import train as train_run
    from genzoo.train.checkpoint import RunFolder

    folder = RunFolder(out_dir)
    if folder.path.exists():
        from genzoo.config import load_config

        if not folder.config.exists() or folder.read_config().get("family") != load_config("demo").family:
            raise GenzooError(f"{str(out_dir)!r} exists and is not an earlier demo; choose another --out.")
    resolved = folder.path.resolve()  # (`--out .` has no name of its own)
    earlier = resolved.with_name(f".{resolved.name}.earlier-{os.getpid()}")  # kept until the new demo is done
    if folder.path.exists():
        folder.path.rename(earlier)
    try:
        run = train_run("demo", out_dir, steps=steps, overrides=list(overrides or []), progress=progress)
    except BaseException:  # a bad override, missing data, Ctrl-C: the earlier demo comes back
        if earlier.exists():
            shutil.rmtree(folder.path, ignore_errors=True)
            earlier.rename(folder.path)
        raise
    shutil.rmtree(earlier, ignore_errors=True)
    _print_run(run)


# ----------------------------------------------------------------------------- helpers

def _print_run(run) -> None:  # noqa: ANN001
    grids = sorted(run.samples.glob("step-*.png"))
    out.print(f"run folder:  [bold]{run.path}[/]")
    if grids:
        out.print(f"samples:     {grids[-1]}")
    if run.losses_plot.exists():
        out.print(f"loss curves: {run.losses_plot}")
    if run.report.exists():
        out.print(f"report:      {run.report}")


def _print_procedure(folder) -> None:  # noqa: ANN001
    import json

    result = folder.path / "result.json"
    if result.is_file():
        for key, value in json.loads(result.read_text(encoding="utf-8")).items():
            out.print(f"{key + ':':<16} {value:.4g}" if isinstance(value, float) else f"{key + ':':<16} {value}", highlight=False)
    out.print(f"run folder:  [bold]{folder.path}[/]")
    out.print(f"report:      {folder.report}")


def _numbers(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise GenzooError(f"{option} {text!r} is not a comma list of numbers, e.g. {option} 0,0.05,0.1.") from None


def _first_line(module_name: str) -> str:
    return (sys.modules[module_name].__doc__ or "").strip().splitlines()[0]


def _first_comment(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


from genzoo.cli_latent import latent_app  # noqa: E402
app.add_typer(latent_app, name="latent")


def main() -> None:
    try:
        from typer._click import exceptions as click  # typer >= 0.20 carries its own click
    except ImportError:
        from click import exceptions as click

    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints as \xNN, not as a crash
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    try:
        code = app(prog_name="genzoo", standalone_mode=False)  # click's errors come here, to print in one line
    except GenzooError as error:
        _print_error(str(error))
        raise SystemExit(2) from None
    except click.NoArgsIsHelpError as error:  # the help is already printed
        raise SystemExit(error.exit_code) from None
    except click.UsageError as error:  # an unknown command or option, a value out of range
        command = error.ctx.command_path if error.ctx else "genzoo"
        message = " ".join(error.format_message().split()).rstrip(".")
        message = message[:1].lower() + message[1:]
        hint = f"see `{command} --help`"
        _print_error(f"{message} ({hint})." if message.endswith("?") else f"{message}; {hint}.")
        raise SystemExit(error.exit_code) from None
    except click.ClickException as error:
        _print_error(" ".join(error.format_message().split()))
        raise SystemExit(error.exit_code) from None
    except (KeyboardInterrupt, typer.Abort):
        raise SystemExit(130) from None
    if isinstance(code, int) and code:  # --help returns 0; Ctrl-C 130
        raise SystemExit(code)


def _print_error(message: str) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)  # a path may hold [brackets]

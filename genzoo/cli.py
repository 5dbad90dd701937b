"""The `genzoo` command: argument parsing and printing only; the work is in the library."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperCommand

from genzoo.errors import GenzooError, RunFinished

app = typer.Typer(
    name="genzoo",
    help="Train, sample and compare deep generative models. Start with `genzoo demo` or `genzoo list`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
out = Console(soft_wrap=True)  # long paths stay whole (copyable), at any terminal width
err = Console(stderr=True)

Overrides = Annotated[Optional[list[str]], typer.Argument(help="Dotted overrides, e.g. train.batch_size=128 model.objective=minimax.", show_default=False)]


@app.command("list")
def list_command() -> None:
    """List the families, procedures, presets, datasets, metrics and feature networks genzoo has."""
    from genzoo.catalogue import catalogue

    found = catalogue()  # cached: no family is imported, nothing is built
    tables = {
        "families": Table("family", "makes", "phases (per step)", "capabilities", "about", title="families (genzoo train FAMILY)"),
        "procedures": Table("procedure", "about", title="procedures (genzoo run PROCEDURE key=value ...)"),
        "presets": Table("preset", "about", title="presets (genzoo train PRESET)"),
        "datasets": Table("dataset", "about", title="datasets (data.name=...)"),
        "metrics": Table("metric", "about", title="metrics (genzoo eval --metrics ...)"),
        "features": Table("feature network", "about", title="feature networks (genzoo eval --extractor ...)"),
    }
    for section, table in tables.items():
        for row in found[section]:
            table.add_row(*row)
        out.print(table)


@app.command("config")
def config_command(
    preset: Annotated[str, typer.Argument(help="A preset name (`genzoo list`), a family name, a YAML file or a run folder.")],
    overrides: Overrides = None,
    json_format: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
) -> None:
    """Print the full config a preset (with overrides) trains with, every key resolved; nothing is trained.

    Examples: genzoo config dcgan;  genzoo config vae train.batch_size=128 --json > vae.json

    The output can be trained as it is: genzoo train vae.json
    """
    import json

    import yaml

    from genzoo.config import load_config

    values = load_config(preset, list(overrides or [])).model_dump(mode="json")
    if json_format:
        typer.echo(json.dumps(values, indent=2))
    else:
        typer.echo(yaml.safe_dump(values, sort_keys=False, default_flow_style=False).rstrip())


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
    """Continue a stopped run from its last checkpoint, with its saved config; --steps N trains a finished run further.

    A run folder can be given from any working folder: config.json holds absolute paths.
    """
    from genzoo.api import train as train_run
    from genzoo.train.checkpoint import RunFolder

    RunFolder(run).read_config()
    _print_run(train_run(run / "config.json", run, steps=steps, overrides=list(overrides or []), resume=True, progress=progress))


@app.command()
def sample(
    run: Annotated[Path, typer.Argument(help="A run folder written by `genzoo train`.")],
    n: Annotated[int, typer.Option("-n", min=1, max=4096, help="Number of images.")] = 64,
    output: Annotated[str, typer.Option("-o", "--output", help="PNG file for the image grid, or a folder ending in / for one PNG per sample (e.g. for genzoo eval --fake); folders are created.")] = "samples.png",
    ema: Annotated[Optional[bool], typer.Option("--ema/--no-ema", help="Use the EMA weights \\[default: when the run has them].", show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the samples.")] = 0,
    labels: Annotated[Optional[str], typer.Option(help="Classes for a conditional model, by index or name (e.g. 7 or Sneaker): one for all, or a comma list of n \\[default: every class in turn].", show_default=False)] = None,
    truncation: Annotated[Optional[float], typer.Option(help="Truncate z to |z| <= T (GANs; 0.5 to 1 trades variety for quality).", show_default=False)] = None,
    psi: Annotated[Optional[float], typer.Option(help="StyleGAN's truncation in w: w_avg + PSI (w - w_avg); 1 none, 0 the mean image, 0.7 a common choice.", show_default=False)] = None,
    steps: Annotated[Optional[int], typer.Option(help="Sampling steps of a diffusion model \\[default: the run's].", show_default=False)] = None,
    sampler: Annotated[Optional[str], typer.Option(help="Diffusion sampler: ddpm or ddim \\[default: the run's].", show_default=False)] = None,
    eta: Annotated[Optional[float], typer.Option(help="DDIM noise: 0 deterministic, 1 like DDPM \\[default: the run's].", show_default=False)] = None,
    guidance: Annotated[Optional[float], typer.Option(help="Classifier-free guidance scale of a conditional diffusion model (1 = conditional).", show_default=False)] = None,
    prompt: Annotated[Optional[str], typer.Option(help="Text a text model continues (characters of its training text), or the prompt of a text-to-image model for all n images.", show_default=False)] = None,
    prompts: Annotated[Optional[Path], typer.Option(help="A text file of prompts for a text-to-image model, one per line: n images of each, a row per prompt, the prompt beside it.", show_default=False)] = None,
    length: Annotated[Optional[int], typer.Option(help="Tokens a text model adds \\[default: the run's window length].", show_default=False)] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature of a text model, above 0 (lower: safer, more repetitive).", show_default=False)] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="Sample a text model's next token from its K most likely only.", show_default=False)] = None,
    beam: Annotated[Optional[int], typer.Option(help="Beam search with this many beams instead of sampling (text; 1 = greedy); -n best.", show_default=False)] = None,
) -> None:
    """Draw new samples from a trained model: a grid, one PNG each in a folder, or text (text models).

    Examples: genzoo sample runs/dcgan -n 64 -o grid.png --truncation 0.7;  genzoo sample runs/cgan --labels Sneaker

    genzoo sample runs/ddpm --sampler ddim --steps 50;  genzoo sample runs/dcgan -n 2000 -o samples/  (one PNG each)

    genzoo sample runs/char-lstm --prompt "ROMEO:" -n 5 --length 400 --temperature 0.8;  genzoo sample runs/stylegan --psi 0.7

    genzoo sample runs/latent-diffusion-shapes --prompt "a small red circle left of a large blue square" -n 16 --guidance 4
    """
    import torch

    from genzoo.loading import load
    from genzoo.models.base import CanGenerate, capabilities
    from genzoo.report.grids import output_path, save_grid, save_images
    from genzoo.sampling import parse_labels, sampling_options

    one_per_sample = output.endswith(("/", os.sep))
    # a file in the way, or an unwritable folder, fails now rather than after sampling
    target = output_path(Path(output) / "000000.png").parent if one_per_sample else output_path(Path(output))
    texts = None
    if prompts is not None:  # text to image: the file is read before the model is loaded
        from genzoo.report.prompts import read_prompts

        if prompt is not None:
            raise GenzooError("give --prompt or --prompts, not both.")
        texts = read_prompts(prompts)
    model = load(run, ema=ema)
    if not isinstance(model, CanGenerate):
        raise GenzooError(f"{run} is a {type(model).__name__} run, which cannot generate new images "
                          f"(it can: {', '.join(capabilities(model))}); train a generative family such as vae or gan.")
    text_to_image = "prompts" in _parameters(model.generate)
    if prompt is not None and not text_to_image and model.modality != "text":
        raise GenzooError(f"a {type(model).__name__} model takes no prompts; drop --prompt, or sample a text-to-image run "
                          "(latent-diffusion, gan-cls) or a text model (char-lm).")
    if text_to_image and prompt is not None:  # a prompt the images are drawn for, not text to continue
        texts, prompt = [prompt], None
    options = sampling_options(model, truncation=truncation, psi=psi, steps=steps, sampler=sampler, eta=eta,
                               guidance=guidance, prompt=prompt, length=length, temperature=temperature, top_k=top_k,
                               beam=beam)
    if "progress" in _parameters(model.generate):
        options["progress"] = err.is_terminal
    if labels is not None:
        if text_to_image:
            raise GenzooError("this text-to-image model takes prompts, not class labels; give --prompt instead of --labels.")
        options["labels"] = torch.tensor(parse_labels(labels, n, model, _class_names(run)))
    if model.modality == "text":  # (n, T) tokens: printed and written as text
        from genzoo.cli_autoregressive import text_output_path, write_text_samples

        tokens = model.generate(n, generator=torch.Generator().manual_seed(seed), **options)
        return write_text_samples(model, tokens, text_output_path(Path(output)),
                                  " (EMA weights)" if getattr(model, "uses_ema", False) else "")
    if texts is not None:
        if not text_to_image:
            raise GenzooError(f"a {type(model).__name__} model takes no prompts; drop --prompts, or sample a "
                              "text-to-image run (latent-diffusion, gan-cls).")
        options["prompts"] = [text for text in texts for _ in range(n)]
    count = n * len(texts or [None])
    images = model.generate(count, generator=torch.Generator().manual_seed(seed), **options)  # (count, C, H, W)
    if one_per_sample:
        save_images(images, target)
    elif prompts is not None:  # a row per prompt, the prompt beside it
        from genzoo.report.prompts import save_prompt_figure

        save_prompt_figure(images, texts, target)
    else:
        save_grid(images, target)
    what = "one PNG per sample in" if one_per_sample else "a grid of"
    out.print(f"wrote {what} {count} samples{' (EMA weights)' if getattr(model, 'uses_ema', False) else ''} to "
              f"[bold]{escape(str(target))}[/]")


class _EvalCommand(TyperCommand):
    """`genzoo eval`: its --help lists the registered metrics, read when the help is shown (from the catalogue)."""

    def format_help(self, ctx, formatter):  # noqa: ANN001, ANN201
        from genzoo.catalogue import catalogue

        for param in self.params:
            if param.name == "metrics":
                names = ", ".join(name for name, _ in catalogue()["metrics"])
                param.help = f"Comma-separated, of: {names} (`genzoo list` says what each is)."
        return super().format_help(ctx, formatter)


@app.command("eval", cls=_EvalCommand)
def eval_command(
    run: Annotated[Optional[Path], typer.Argument(help="A run folder written by `genzoo train`.", show_default=False)] = None,
    metrics: Annotated[str, typer.Option(help="Comma-separated metrics (`genzoo list`).")] = "fid,kid,is,pr,dc,variety",
    num_samples: Annotated[int, typer.Option("--num-samples", "-n", min=1, help="Generated images to score.")] = 10_000,
    num_real: Annotated[Optional[int], typer.Option(min=1, help="Real images \\[default: max(num-samples, 10000), capped at the split].", show_default=False)] = None,
    extractor: Annotated[str, typer.Option(help="Feature network: fmnist (offline, shipped) or inception (FID Inception-v3).")] = "fmnist",
    inception_weights: Annotated[Optional[str], typer.Option(help="Local pt_inception-2015-12-05 weights file for --extractor inception.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Reference split of the run's dataset (train, test, all) \\[default: the run's].", show_default=False)] = None,
    ema: Annotated[Optional[bool], typer.Option("--ema/--no-ema", help="Use the EMA weights \\[default: when the run has them].", show_default=False)] = None,
    steps: Annotated[Optional[int], typer.Option(help="Sampling steps of a diffusion model \\[default: the run's].", show_default=False)] = None,
    sampler: Annotated[Optional[str], typer.Option(help="Diffusion sampler: ddpm or ddim \\[default: the run's].", show_default=False)] = None,
    eta: Annotated[Optional[float], typer.Option(help="DDIM noise: 0 deterministic, 1 like DDPM \\[default: the run's].", show_default=False)] = None,
    guidance: Annotated[Optional[float], typer.Option(help="Classifier-free guidance scale of a conditional diffusion model.", show_default=False)] = None,
    real: Annotated[Optional[Path], typer.Option(help="Folder of real images (with --fake, instead of a run).")] = None,
    fake: Annotated[Optional[Path], typer.Option(help="Folder of generated images (with --real).")] = None,
    folder_resize: Annotated[Optional[str], typer.Option(help="How --real/--fake files reach the network: pytorch-fid (read as RGB, the network's own resize, no crop) or crop (shorter side, antialiased, centre crop) \\[default: pytorch-fid for inception, crop for fmnist].", show_default=False)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the samples and subsets.")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per feature batch.")] = 500,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the scores with their protocols to this JSON file.")] = None,
) -> None:
    """Score a run's samples (FID, KID, IS, precision/recall, density/coverage, class variety, ...), or two folders.

    Every score is printed with its own protocol: feature network and weights hash, image counts, reference, EMA, sampler.

    A metric that cannot be computed (e.g. FID from too few images) is skipped with the reason; the others are computed.

    Examples: genzoo eval runs/dcgan --metrics fid,pr -n 5000;  genzoo eval runs/ddpm --sampler ddim --steps 25

    Two folders: genzoo eval --real photos/ --fake samples/
    """
    import json

    from genzoo.metrics import evaluate, evaluate_folders
    from genzoo.report.protocol import describe

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    sampling = {key: value for key, value in (("steps", steps), ("sampler", sampler), ("eta", eta), ("guidance", guidance))
                if value is not None}
    if json_out is not None and json_out.is_dir():  # checked before minutes of scoring, not after
        raise GenzooError(f"--json {str(json_out)!r} is a folder; give a file name such as scores.json.")
    if json_out is not None and not json_out.parent.is_dir():
        raise GenzooError(f"folder {str(json_out.parent)!r} does not exist; create it or choose another --json.")
    if (real is None) != (fake is None):
        raise GenzooError("--real and --fake go together: give both folders, or a run folder instead.")
    if real is not None:
        if run is not None:
            raise GenzooError("give either a run folder or --real/--fake folders, not both.")
        if sampling:
            raise GenzooError(f"--{next(iter(sampling))} sets how a run's model samples; two folders hold images already, so drop it.")
        scores = evaluate_folders(real, fake, names, num_samples=None if num_samples == 10_000 else num_samples,
                                  extractor=extractor, extractor_weights=inception_weights, folder_resize=folder_resize,
                                  batch_size=batch_size, seed=seed, skip_refused=True)
    elif run is None:
        raise GenzooError("give a run folder to evaluate, or --real DIR --fake DIR.")
    elif folder_resize is not None:
        raise GenzooError("--folder-resize applies to --real/--fake folders only; drop it when evaluating a run.")
    else:
        scores = evaluate(run, names, split=split, num_samples=num_samples, num_real=num_real, extractor=extractor,
                          extractor_weights=inception_weights, ema=ema, batch_size=batch_size, seed=seed,
                          sampling=sampling, skip_refused=True)
    table = Table("metric", "value", "± std", "n_real", "n_fake", title="scores")
    for score in scores:
        table.add_row(score.name, f"{score.value:.4f}", "" if score.std is None else f"{score.std:.4f}",
                      str(score.protocol.get("n_real", "")), str(score.protocol.get("n_fake", "")))
    out.print(table)
    groups: dict[str, list[str]] = {}  # each score's own protocol; scores that share one are named together
    for score in scores:
        groups.setdefault(describe(score.protocol), []).append(score.name)
    for description, members in groups.items():
        out.print(f"protocol of {', '.join(members)}: {description}", soft_wrap=True, highlight=False, markup=False)
    for name, reason in getattr(scores, "skipped", {}).items():
        err.print(f"[yellow]skipped {name}:[/] {escape(reason)}", soft_wrap=True, highlight=False)
    if json_out is not None:
        from genzoo.io import atomic_write_text

        atomic_write_text(json_out, json.dumps([s.as_dict() for s in scores], indent=2) + "\n")
        out.print(f"wrote {json_out}")


@app.command()
def report(run: Annotated[Path, typer.Argument(help="A run folder written by `genzoo train`.")]) -> None:
    """Write report.html in the run folder: loss curves, sample grids, config."""
    from genzoo.io import print_note
    from genzoo.report import write_report
    from genzoo.train.checkpoint import RunFolder

    folder = RunFolder(run)
    folder.read_config()
    if folder.saved_nothing():
        print_note(f"{run} has no checkpoint yet (the first is written at step {folder.first_checkpoint_step()}): "
                   "the report shows what is logged so far.")
    out.print(f"wrote [bold]{write_report(folder)}[/]")


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
    """Where a finished run's files are; printed by the main process only (under `accelerate launch`, each
    process returns here)."""
    from genzoo.io import is_main_process

    if not is_main_process():
        return
    grids = sorted(run.samples.glob("step-*.png"))
    out.print(f"run folder:  [bold]{escape(str(run))}[/]")
    if grids:
        out.print(f"samples:     {escape(str(grids[-1]))}")
    if run.losses_plot.exists():
        out.print(f"loss curves: {escape(str(run.losses_plot))}")
    if run.report.exists():
        out.print(f"report:      {escape(str(run.report))}")


def _first_line(module_name: str) -> str:
    return (sys.modules[module_name].__doc__ or "").strip().splitlines()[0]


def _parameters(function) -> set[str]:  # noqa: ANN001
    import inspect

    return set(inspect.signature(function).parameters)


def _class_names(run: Path) -> tuple[str, ...] | None:
    """Class names of a run's data where its checkpoint predates saving them: Fashion-MNIST's."""
    from genzoo.data.fashion_mnist import CLASSES
    from genzoo.train.checkpoint import RunFolder

    name = RunFolder(run).read_config().get("data", {}).get("name", "")
    return CLASSES if str(name).startswith("fashion-mnist") else None


from genzoo.cli_latent import latent_app  # noqa: E402
app.add_typer(latent_app, name="latent")
from genzoo.cli_translate import translate_command  # noqa: E402
app.command("translate")(translate_command)
from genzoo.cli_autoregressive import complete  # noqa: E402
app.command()(complete)
from genzoo.cli_render import render  # noqa: E402
app.command()(render)
from genzoo.cli_procedures import attack, run_command, stylize  # noqa: E402
app.command("run")(run_command)
app.command()(stylize)
app.command()(attack)


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
    except RunFinished as finished:  # nothing to do is not a mistake
        out.print(escape(str(finished)), soft_wrap=True, highlight=False)
        raise SystemExit(0) from None
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

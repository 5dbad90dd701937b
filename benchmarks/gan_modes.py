"""Mode collapse of the GAN objectives on 2-D toy mixtures: 8 Gaussians on a ring, 25 on a grid.

The experiment of Metz et al., "Unrolled GANs" (2017), Sec. 3.1, and Srivastava et al., "VEEGAN"
(2017), Sec. 5.1, with genzoo's own pieces: for every objective (minimax, non-saturating, lsgan,
wgan, wgan-gp, hinge) x dataset (`ring8`, `grid25`, see `genzoo.data.toy`) x seed, a `gan` with
`model.architecture=mlp` is trained by `genzoo.train.trainer.Trainer`, then N points are generated
and scored by `genzoo.data.toy.mode_statistics`:
- high quality: the share of samples within 3 std (3 * 0.01) of their nearest mode;
- modes covered: modes that receive at least 10% of a perfect generator's share (N / K) of
  high-quality samples (at least one).
A run that diverges (non-finite loss) scores 0 modes and 0 high quality and is counted in the JSON.
The first row of the table scores N points of the real mixture itself, the best reachable values.

Settings: an MLP generator (latent 64, 3 ReLU layers of 128, Tanh) and discriminator (3 LeakyReLU
layers of 128, no normalisation, a linear head), batch 256, no EMA. Each objective keeps what its
paper prescribes and the GAN config supports: optimizer and betas (`genzoo.losses`: RMSProp for
wgan, Adam (0, 0.9) for wgan-gp and hinge, Adam (0.5, 0.999) otherwise), critic steps (5 for wgan
and wgan-gp), weight clipping (0.01, wgan) and gradient penalty (10, wgan-gp). The learning rate
is 1e-3 for every objective by default: the papers' rates (5e-5 to 2e-4) were tuned for images
and budgets of 10^5 steps and leave every objective far from the modes after a few thousand steps
on a CPU; `--lr paper` uses them (train.lr defaults to 2e-4 where the paper names none).
`--steps` counts generator steps, so the 5-critic-step objectives see 5x more discriminator updates.

Budget: the defaults (36 runs of 2,000 steps) took 32 minutes on a 2-core machine shared with
other work (load average 4-5); alone on one core a step takes about 7.5 ms with one critic step
and 55 ms for wgan-gp (5 critic steps, each with a double backward), so an idle 2-core machine
needs about 12 minutes. The wgan and wgan-gp runs take three quarters of it. At this budget the
ring is (partly) learned by the one-critic-step objectives and the grid by none: the numbers
compare the objectives at an equal, small number of generator steps, not at convergence.

Runs go to a pool of `--workers` processes (default: 2, or the CPU count if lower), each with one
intra-op thread: the networks are small, and two threads per process on a shared 2-core machine
spend more time waiting on each other than computing.

Run: python benchmarks/gan_modes.py [--steps 2000] [--seeds 3] [--objectives minimax,wgan-gp]
     [--datasets ring8,grid25] [--samples 10000] [--lr 1e-3|paper] [--workers 2]
Writes benchmarks/results/gan_modes.json, a scatter plot per objective in
benchmarks/results/gan_modes/<objective>.png (seed 0, both datasets, modes and 3-std circles
marked), and all of them in one grid, benchmarks/results/gan_modes.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from genzoo.data.toy import MODE_STD, mode_statistics, modes, sample_points
from genzoo.losses import ADVERSARIAL_LOSSES

OBJECTIVES = ("minimax", "non-saturating", "lsgan", "wgan", "wgan-gp", "hinge")
DATASETS = ("ring8", "grid25")
RESULTS = Path(__file__).resolve().parent / "results"
MODEL = {"architecture": "mlp", "latent_dim": 64, "generator_width": 128, "discriminator_width": 128,
         "discriminator_norm": "none"}
PLOT_POINTS = 2500  # samples drawn per scatter plot (VEEGAN's sample count)


# ----------------------------------------------------------------------------- one run


def overrides(objective: str, dataset: str, seed: int, steps: int, batch_size: int, lr: str) -> list[str]:
    """The dotted config overrides of one run: the MLP GAN, the objective's paper optimizer, the budget."""
    paper = ADVERSARIAL_LOSSES.get(objective).paper
    items = [f"model.{key}={value}" for key, value in MODEL.items()]
    items += [f"model.objective={objective}", f"data.name={dataset}", f"train.seed={seed}",
              f"train.steps={steps}", f"train.batch_size={batch_size}",
              f"train.log_every={min(steps, 500)}", f"train.sample_every={steps}", f"train.checkpoint_every={steps}",
              "train.on_divergence=stop"]  # a diverged objective is a result here, not something to roll back
    items.append(f"train.optimizer={paper.get('optimizer', 'adam')}")
    if "betas" in paper:
        items.append(f"train.betas=[{paper['betas'][0]},{paper['betas'][1]}]")
    if lr == "paper":
        if "lr" in paper:
            items.append(f"train.lr={paper['lr']}")
    else:
        items.append(f"train.lr={float(lr)}")
    return items


def run_one(objective: str, dataset: str, seed: int, steps: int, batch_size: int, lr: str, samples: int,
            keep_points: bool) -> dict[str, Any]:
    """Train one GAN in a temporary folder and score `samples` generated points."""
    torch.set_num_threads(1)
    from genzoo.config import load_config
    from genzoo.errors import GenzooError
    from genzoo.train.trainer import Trainer

    items = overrides(objective, dataset, seed, steps, batch_size, lr)
    config = load_config("gan", items)
    result: dict[str, Any] = {"objective": objective, "dataset": dataset, "seed": seed, "overrides": items}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gan_modes-") as folder:
        trainer = Trainer(config, out=Path(folder) / "run", progress=False)
        try:
            trainer.fit()
        except GenzooError as error:  # TrainingDiverged: a non-finite loss
            result.update(seconds=time.perf_counter() - start, diverged=str(error), modes_covered=0,
                          high_quality=0.0, counts=[0] * len(modes(dataset)))
            return result
        model = trainer.model.eval()
        generator = torch.Generator(device=model.device).manual_seed(10_000 + seed)
        points = model.generate(samples, generator=generator).detach().float().cpu().flatten(1)  # (N, 2)
    result.update(seconds=time.perf_counter() - start, diverged=None, **mode_statistics(points, modes(dataset)))
    if keep_points:
        result["points"] = points[:PLOT_POINTS].tolist()
    return result


def real_reference(dataset: str, samples: int) -> dict[str, Any]:
    """The scores of `samples` points of the true mixture (a fresh seed): the best reachable."""
    points, _ = sample_points(dataset, samples, seed=99)
    return mode_statistics(points, modes(dataset))


# ----------------------------------------------------------------------------- summary, table, plots


def summarise(runs: list[dict[str, Any]], objectives: list[str], datasets: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for objective in objectives:
        for dataset in datasets:
            group = [r for r in runs if r["objective"] == objective and r["dataset"] == dataset]
            if not group:
                continue
            covered = [float(r["modes_covered"]) for r in group]
            quality = [float(r["high_quality"]) for r in group]
            summary.setdefault(objective, {})[dataset] = {
                "modes": len(modes(dataset)),
                "modes_covered_mean": statistics.fmean(covered),
                "modes_covered_std": statistics.stdev(covered) if len(covered) > 1 else 0.0,
                "high_quality_mean": statistics.fmean(quality),
                "high_quality_std": statistics.stdev(quality) if len(quality) > 1 else 0.0,
                "seeds": len(group),
                "diverged": sum(r["diverged"] is not None for r in group),
                "seconds_mean": statistics.fmean(r["seconds"] for r in group),
            }
    return summary


def cell(entry: dict[str, Any]) -> tuple[str, str]:
    modes_text = f"{entry['modes_covered_mean']:.1f} ± {entry['modes_covered_std']:.1f} / {entry['modes']}"
    quality_text = f"{100 * entry['high_quality_mean']:.1f} ± {100 * entry['high_quality_std']:.1f} %"
    if entry.get("diverged"):
        quality_text += f" ({entry['diverged']} diverged)"
    return modes_text, quality_text


def print_table(summary: dict[str, Any], reference: dict[str, Any], datasets: list[str], title: str) -> str:
    """Print a rich table; return the same table as Markdown (for the README)."""
    table = Table(title=title)
    table.add_column("objective")
    header = ["objective"]
    for dataset in datasets:
        table.add_column(f"{dataset} modes", justify="right")
        table.add_column(f"{dataset} HQ", justify="right")
        header += [f"{dataset}: modes covered", f"{dataset}: high quality"]
    rows = [["real data"] + [text for d in datasets for text in (
        f"{reference[d]['modes_covered']} / {len(modes(d))}", f"{100 * reference[d]['high_quality']:.1f} %")]]
    for objective, by_dataset in summary.items():
        cells = [cell(by_dataset[d]) if d in by_dataset else ("", "") for d in datasets]
        rows.append([objective] + [text for pair in cells for text in pair])
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def draw(axis: Any, dataset: str, points: list[list[float]] | None, title: str) -> None:
    from matplotlib.patches import Circle

    if points:
        xy = torch.tensor(points)
        axis.scatter(xy[:, 0], xy[:, 1], s=2, alpha=0.35, color="tab:blue", linewidths=0, rasterized=True)
    for x, y in modes(dataset).tolist():
        axis.add_patch(Circle((x, y), 3 * MODE_STD, fill=False, color="tab:red", linewidth=0.8))
        axis.plot(x, y, "+", color="tab:red", markersize=4, markeredgewidth=0.8)
    axis.set_xlim(-1.05, 1.05)
    axis.set_ylim(-1.05, 1.05)
    axis.set_aspect("equal")
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(title, fontsize=8)


def plot(runs: list[dict[str, Any]], objectives: list[str], datasets: list[str], seed: int, folder: Path,
         combined: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def first(objective: str, dataset: str) -> dict[str, Any] | None:
        matches = (r for r in runs if (r["objective"], r["dataset"], r["seed"]) == (objective, dataset, seed))
        return next(matches, None)

    def title(run: dict[str, Any] | None, objective: str, dataset: str) -> str:
        if run is None:
            return f"{objective}, {dataset}: not run"
        if run["diverged"]:
            return f"{objective}, {dataset}: diverged"
        return (f"{objective}, {dataset}: {run['modes_covered']}/{len(modes(dataset))} modes, "
                f"{100 * run['high_quality']:.0f}% HQ")

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for objective in objectives:
        figure, axes = plt.subplots(1, len(datasets), figsize=(3.2 * len(datasets), 3.4), squeeze=False)
        for axis, dataset in zip(axes[0], datasets):
            run = first(objective, dataset)
            draw(axis, dataset, run and run.get("points"), title(run, objective, dataset))
        figure.tight_layout()
        path = folder / f"{objective}.png"
        figure.savefig(path, dpi=150)
        plt.close(figure)
        written.append(path)
    figure, axes = plt.subplots(len(datasets), len(objectives), figsize=(2.4 * len(objectives), 2.9 * len(datasets)),
                                squeeze=False)
    for column, objective in enumerate(objectives):
        for row, dataset in enumerate(datasets):
            run = first(objective, dataset)
            label = title(run, objective, dataset).replace(": ", "\n", 1)
            draw(axes[row][column], dataset, run and run.get("points"), label)
    figure.tight_layout()
    figure.savefig(combined, dpi=150)
    plt.close(figure)
    return written + [combined]


# ----------------------------------------------------------------------------- main


def names(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown or not chosen:
        raise SystemExit(f"unknown {what} {', '.join(unknown) or '(none given)'}; choose from {', '.join(allowed)}.")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="generator steps per run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per objective and dataset (0, 1, ...)")
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", default="1e-3", help="learning rate of every objective, or 'paper' for each paper's")
    parser.add_argument("--samples", type=int, default=10_000, help="generated points scored per run")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="runs in parallel")
    parser.add_argument("--out", type=Path, default=RESULTS / "gan_modes.json")
    args = parser.parse_args(argv)
    objectives = names(args.objectives, OBJECTIVES, "objective")
    datasets = names(args.datasets, DATASETS, "dataset")
    if args.lr != "paper":
        float(args.lr)  # fail now on a typo, not in the workers
    jobs = [(objective, dataset, seed)
            for seed in range(args.seeds) for dataset in datasets for objective in objectives]
    jobs.sort(key=lambda job: -(ADVERSARIAL_LOSSES.get(job[0]).paper.get("critic_steps", 1)))  # slow runs first

    start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    console = Console(stderr=True)
    with ProcessPoolExecutor(max_workers=max(1, args.workers), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_one, objective, dataset, seed, args.steps, args.batch_size, args.lr, args.samples,
                               seed == 0) for objective, dataset, seed in jobs]
        for done, future in enumerate(as_completed(futures), 1):
            run = future.result()
            runs.append(run)
            console.print(f"[{done}/{len(jobs)}] {run['objective']:>14} {run['dataset']:>6} seed {run['seed']}: "
                          f"{run['modes_covered']:>2} modes, {100 * run['high_quality']:5.1f}% HQ, "
                          f"{run['seconds']:.0f}s"
                          + (" (diverged)" if run["diverged"] else ""), highlight=False)
    wall = time.perf_counter() - start
    runs.sort(key=lambda r: (objectives.index(r["objective"]), datasets.index(r["dataset"]), r["seed"]))

    summary = summarise(runs, objectives, datasets)
    reference = {dataset: real_reference(dataset, args.samples) for dataset in datasets}
    lr_text = "each paper's lr" if args.lr == "paper" else f"lr {float(args.lr):g}"
    title = (f"GAN mode coverage, mean ± std over {args.seeds} seed(s): {args.steps} steps of batch "
             f"{args.batch_size}, "
             f"{lr_text}, {args.samples} samples; CPU, {len(runs)} runs in {wall / 60:.1f} min")
    markdown = print_table(summary, reference, datasets, title)
    print("\n" + markdown + "\n")

    folder = args.out.with_suffix("")
    figures = plot(runs, objectives, datasets, 0, folder, args.out.with_suffix(".png"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "gan_modes",
        "settings": {"steps": args.steps, "seeds": args.seeds, "batch_size": args.batch_size, "lr": args.lr,
                     "samples": args.samples, "workers": args.workers, "model": MODEL, "mode_std": MODE_STD,
                     "high_quality": "within 3 * mode_std of the nearest mode",
                     "covered": "at least max(1, ceil(0.1 * samples / K)) high-quality samples"},
        "hardware": {"device": "cpu", "processor": platform.processor() or platform.machine(),
                     "cpu_count": os.cpu_count(), "torch": torch.__version__, "python": sys.version.split()[0]},
        "wall_seconds": wall,
        "reference": reference,
        "summary": summary,
        "markdown": markdown,
        "runs": [{k: v for k, v in run.items() if k != "points"} for run in runs],
    }
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {args.out} and {len(figures)} figures under {folder.parent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

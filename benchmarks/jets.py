"""Quark/gluon tagging on Pythia 8 jet images, simulation -> "data" (needs the physics extra: `pip install genzoo[physics]`).

The `jets` datasets (genzoo/data/jets.py: Z + jet at 13 TeV, anti-kT R = 0.4, pT 100-150 GeV, 25 x 25
pT images): a classifier trained on labelled "simulation" (`jets`, Tune:pp = 14) must tag quark and
gluon jets in unlabelled "data" (`jets-data`: Tune:pp = 25, particles smeared, 5% low response, those
under 0.5 GeV lost). Three runs of the `dann` preset (Ganin et al. 2016: LeNet features, SGD 0.01
momentum 0.9, the lambda_p and mu_p schedules, batches of 64 + 64), `--steps` steps each on `--jets`
training jets per side:
- source only: model.grl_lambda=0 (the same network, schedule and batches; no gradient reversal);
- DANN: the gradient reversal on, `jets-data` (train split) as the unlabelled target;
- oracle: the same network trained on the labels of `jets-data` (train split).
All scored on the test split of `jets-data` (2,000 jets, the labels training never saw): accuracy (also
through `genzoo.evaluate(..., ["accuracy"], split="test")`, recorded beside) and the ROC AUC of p(gluon);
and on the test split of `jets` (simulation) beside. A cut-based anchor from the physics: the number of non-empty pixels (the constituent
multiplicity, the classic quark/gluon variable), its threshold chosen on the simulation's training jets.
Also printed: mean observables per class and condition, and the generator's speed (jets per second of
`generate`, one process, with the Pythia-only event rate and the selection's acceptance).

Prints tables, writes benchmarks/results/jets.json and docs/jets.png (mean jet images, multiplicities).

    nice -n 10 python benchmarks/jets.py --jets 2000 --test-jets 1000 --steps 300   # 15 min on 2 shared cores (README)
    nice -n 10 python benchmarks/jets.py          # the same scored on the 2,000 test jets, and through genzoo.evaluate
    python benchmarks/jets.py --quick             # a smoke run (2 min)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import genzoo
from genzoo.config import DataConfig
from genzoo.data import build_dataset
from genzoo.data.jets import DATA, HALF_WIDTH, SIMULATION, decode, generate, observables, pythia
from genzoo.metrics.physics import roc_auc

sys.path.insert(0, str(Path(__file__).parent))
from physics import train_once  # noqa: E402  (benchmarks/physics.py)


def _build(config: DataConfig) -> float:
    start = time.perf_counter()
    build_dataset(config)
    return time.perf_counter() - start


def make_data(args: argparse.Namespace) -> dict:
    """Generate (or find in the cache) the four datasets, `--workers` at a time; seconds per dataset."""
    configs = [DataConfig(name=name, split=split, max_images=args.jets if split == "train" else args.test_jets)
               for name in ("jets", "jets-data") for split in ("train", "test")]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        seconds = pool.map(_build, configs)
    return {f"{c.name} {c.split}": round(s, 1) for c, s in zip(configs, seconds)}


def test_images(name: str, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The test split of `name` (n jets; None: the split's 2,000), as the runs see it (3 channels, [-1, 1]), and its labels."""
    data = build_dataset(DataConfig(name=name, split="test", channels=3, max_images=n))
    return data.images.float() / 127.5 - 1.0, data.labels


def scores(model, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:  # noqa: ANN001
    """Accuracy and the ROC AUC of p(gluon)."""
    with torch.no_grad():
        logits = torch.cat([model.predict(x) for x in images.split(500)])
    return float((logits.argmax(1) == labels).double().mean()), roc_auc(logits.softmax(1)[:, 1], labels)


def adaptation(args: argparse.Namespace) -> list[dict]:
    rows = []
    data_test, sim_test = test_images("jets-data", args.test_jets), test_images("jets", args.test_jets)
    sizes = {"data.max_images": args.jets, "data.target.max_images": args.jets}
    for name, folder, overrides in (
            ("source only", "source-only", {"model.grl_lambda": 0.0}),
            ("DANN", "dann", {}),
            ("oracle (data labels)", "oracle", {"model.grl_lambda": 0.0, "data.name": "jets-data"})):
        run = Path(args.runs) / folder
        seconds = train_once("dann", run, args.steps, {"data.name": "jets", "data.target.name": "jets-data", **sizes, **overrides})
        model = genzoo.load(run)
        (data_accuracy, data_auc), (sim_accuracy, sim_auc) = scores(model, *data_test), scores(model, *sim_test)
        row = {"model": name, "steps": args.steps, "train_seconds": round(seconds, 1), "data_accuracy": data_accuracy,
               "data_auc": data_auc, "simulation_accuracy": sim_accuracy, "simulation_auc": sim_auc}
        if args.test_jets is None:  # the same through `genzoo eval RUN --metrics accuracy --split test`
            evaluated = {s.name: s.value for s in genzoo.evaluate(run, ["accuracy"], split="test")}
            row["genzoo_eval_target_accuracy"] = evaluated["target-accuracy"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def multiplicity_cut(training_jets: int, test_jets: int | None) -> dict:
    """The number of non-empty pixels: the threshold that best separates the simulation's training jets, applied to
    the test splits of both conditions; and its AUC (no threshold) on each."""
    pixels = {}
    for name, split in (("jets", "train"), ("jets", "test"), ("jets-data", "test")):
        data = build_dataset(DataConfig(name=name, split=split, max_images=test_jets if split == "test" else training_jets))
        pixels[name, split] = ((data.images[:, 0] > 0).sum((1, 2)).double(), data.labels)
    count, labels = pixels["jets", "train"]
    thresholds = torch.arange(int(count.max()) + 1)
    accuracy = torch.stack([((count > t).long() == labels).double().mean() for t in thresholds])
    best = int(thresholds[accuracy.argmax()])  # gluon when more than `best` pixels
    result = {"threshold_pixels": best}
    for (name, split), (count, labels) in pixels.items():
        if split == "test":
            key = "simulation" if name == "jets" else "data"
            result[f"{key}_accuracy"] = float(((count > best).long() == labels).double().mean())
            result[f"{key}_auc"] = roc_auc(count, labels)
    return result


def physics_table(test_jets: int | None) -> dict:
    """Mean observables of the test splits per condition and class."""
    table = {}
    for name in ("jets", "jets-data"):
        data = build_dataset(DataConfig(name=name, split="test", max_images=test_jets))
        obs = observables(decode(data.images.float() / 127.5 - 1.0))
        for label, cls in enumerate(("quark", "gluon")):
            chosen = data.labels == label
            table[f"{name} {cls}"] = {k: float(obs[k][chosen].mean()) for k in ("pt", "pixels", "girth")}
    return table


def picture(test_jets: int | None, path: str) -> None:
    """Mean jet images (log colour scale) per class and condition, and the non-empty-pixel histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    figure, axes = plt.subplots(1, 7, figsize=(18, 3.2), gridspec_kw={"width_ratios": [1, 1, 1, 1, 0.06, 0.25, 1.5],
                                                                      "wspace": 0.3})
    axes[5].axis("off")  # room for the colour bar's labels
    extent = (-HALF_WIDTH, HALF_WIDTH, -HALF_WIDTH, HALF_WIDTH)
    for column, name in enumerate(("jets", "jets-data")):
        data = build_dataset(DataConfig(name=name, split="test", max_images=test_jets))
        pt = decode(data.images.float() / 127.5 - 1.0)  # (N, 25, 25) GeV
        for label, cls in enumerate(("quark", "gluon")):
            axis = axes[2 * column + label]
            shown = axis.imshow(pt[data.labels == label].mean(0).numpy(), origin="lower", extent=extent,
                                norm=LogNorm(vmin=1e-3, vmax=100), cmap="viridis")
            axis.set_title(f"{name}: mean {cls} jet (GeV)", fontsize=8)
            axis.set_xlabel("Δφ")
            count = observables(pt[data.labels == label])["pixels"].numpy()
            axes[6].hist(count, bins=np.arange(0, 61, 2), histtype="step", density=True, label=f"{name} {cls}",
                         color=("tab:blue", "tab:red")[label], linestyle=("-", "--")[column])
    axes[0].set_ylabel("Δη")
    figure.colorbar(shown, cax=axes[4])
    axes[6].set_xlabel("non-empty pixels")
    axes[6].legend(fontsize=7)
    figure.suptitle("Pythia 8 Z + jet, anti-kT R = 0.4, pT 100-150 GeV: simulation (Tune:pp = 14) and 'data' "
                    "(Tune:pp = 25, smeared, particles under 0.5 GeV lost)", fontsize=9)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")


def speed(n: int) -> dict:
    """Jets per second of `generate` (one process), per class, with Pythia's own event rate and the acceptance."""
    result = {}
    for label, cls in enumerate(("quark", "gluon")):
        start = time.perf_counter()
        jets = generate(label, n, seed=999, conditions=SIMULATION)
        seconds = time.perf_counter() - start
        generator = pythia(label, seed=998)
        start = time.perf_counter()
        for _ in range(int(jets["events"])):
            generator.next()
        pythia_seconds = time.perf_counter() - start
        result[cls] = {"jets_per_s": n / seconds, "events": int(jets["events"]), "acceptance": n / int(jets["events"]),
                       "pythia_events_per_s": int(jets["events"]) / pythia_seconds, "seconds": seconds}
        print(json.dumps({cls: result[cls]}), flush=True)
    start = time.perf_counter()
    generate(1, n // 2, seed=997, conditions=DATA)
    result["gluon, data conditions"] = {"jets_per_s": (n // 2) / (time.perf_counter() - start)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--jets", type=int, default=2000, help="training jets per side (the test splits hold 2,000)")
    parser.add_argument("--test-jets", type=int, default=None, help="test jets per side (default: the split's 2,000)")
    parser.add_argument("--speed-jets", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="processes generating the datasets")
    parser.add_argument("--runs", default="benchmarks/runs/jets")
    parser.add_argument("--out", default="benchmarks/results/jets.json")
    parser.add_argument("--picture", default="docs/jets.png")
    parser.add_argument("--picture-only", action="store_true", help="only draw the picture (from the cached datasets)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.jets, args.test_jets, args.speed_jets = 10, 200, 100, 20
        args.runs, args.out, args.picture = args.runs + "-quick", args.out.replace(".json", "-quick.json"), ""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    if args.picture_only:
        return picture(args.test_jets, args.picture)
    start = time.time()
    generation = make_data(args)
    print(json.dumps({"dataset_seconds": generation}), flush=True)
    rows = adaptation(args)
    cut = multiplicity_cut(args.jets, args.test_jets)
    physics = physics_table(args.test_jets)
    rates = speed(args.speed_jets)
    if args.picture:
        picture(args.test_jets, args.picture)

    print("\n| quark/gluon, jets -> jets-data | steps | simulation accuracy | data accuracy | data AUC |")
    print("|---|---|---|---|---|")
    print(f"| multiplicity cut (non-empty pixels > {cut['threshold_pixels']}, chosen on simulation) | – | "
          f"{100 * cut['simulation_accuracy']:.1f}% | {100 * cut['data_accuracy']:.1f}% | {cut['data_auc']:.3f} |")
    for row in rows:
        sim = f"{100 * row['simulation_accuracy']:.1f}%"
        print(f"| {row['model']} | {row['steps']} ({row['train_seconds'] / 60:.1f} min) | {sim} | "
              f"{100 * row['data_accuracy']:.1f}% | {row['data_auc']:.3f} |")
    print("\n| test split | image pT (GeV) | non-empty pixels | girth |")
    print("|---|---|---|---|")
    for name, obs in physics.items():
        print(f"| {name} | {obs['pt']:.1f} | {obs['pixels']:.1f} | {obs['girth']:.4f} |")
    print("\n| generation, one process | jets/s | Pythia events/s | acceptance |")
    print("|---|---|---|---|")
    for cls in ("quark", "gluon"):
        r = rates[cls]
        print(f"| {cls} jets | {r['jets_per_s']:.1f} | {r['pythia_events_per_s']:.0f} | {100 * r['acceptance']:.0f}% |")
    print(f"| gluon jets, data conditions | {rates['gluon, data conditions']['jets_per_s']:.1f} | | |")
    result = {"adaptation": rows, "multiplicity_cut": cut, "observables": physics, "speed": rates,
              "dataset_seconds": generation, "training_jets_per_side": args.jets, "steps": args.steps,
              "wall_seconds": round(time.time() - start, 1),
              "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, CPU",
              "torch": torch.__version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['wall_seconds']} s)")



if __name__ == "__main__":
    main()

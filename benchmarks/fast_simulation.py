"""Fast calorimeter simulation: a conditional GAN, VAE and DDPM against the simulator they replace.

The presets `calo-gan` (conditional DCGAN, the idea of CaloGAN, Paganini et al. 2018), `calo-vae`
(conditional VAE) and `calo-ddpm` (class-conditional DDPM, DDIM 50 steps, guidance 1) are each trained
`--steps` steps on 20,000 toy calorimeter showers (`calo`: e- and pi+ at 5-100 GeV, 10 classes;
genzoo/data/calo.py) and scored on `--showers` held-out simulated showers (split test), every class
equally often, with the physics metrics (genzoo/metrics/physics.py, through `genzoo.evaluate`): W1 of the total energy and the
mean depth, FPD and KPD on all observables, the classifier two-sample AUC (0.5: indistinguishable) and
the mean |response - 1| over the 10 classes. Two anchors from the same simulator give the scale:
another sample of the simulation (the noise floor at this sample size) and the "data" detector
conditions (a known, physically small shift).

Speed: showers per second, in GeV, of the simulator (`simulate`) and of each generator (`generate` +
`decode`, no grad, batches of 500, for at most 20 s), same process and threads; the speed-up is
generator / simulator.

Prints a table, writes benchmarks/results/fast_simulation.json and docs/calo.png (histograms).

    nice -n 10 python benchmarks/fast_simulation.py                # ~35 min on 2 shared cores
    python benchmarks/fast_simulation.py --quick                   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import genzoo
from genzoo.config import DataConfig
from genzoo.data import build_dataset
from genzoo.data.calo import CLASS_ENERGIES, DATA, PARTICLES, decode, simulate
from genzoo.metrics.physics import (frechet_physics_distance, kernel_physics_distance, observables,
                                    wasserstein_1d)

sys.path.insert(0, str(Path(__file__).parent))
from physics import train_once  # noqa: E402  (benchmarks/physics.py)

PRESETS = {"calo-gan": "GAN", "calo-vae": "VAE", "calo-ddpm": "DDPM"}


def class_showers(n: int, seed: int, detector=None) -> np.ndarray:  # noqa: ANN001
    """n simulated showers, every class of the `calo` dataset in turn: (n, 3, 16, 16) GeV."""
    labels = np.arange(n) % (2 * len(CLASS_ENERGIES))
    particles = np.asarray(PARTICLES[:2])[labels // len(CLASS_ENERGIES)]
    energies = np.asarray(CLASS_ENERGIES)[labels % len(CLASS_ENERGIES)]
    return simulate(particles, energies, seed=seed, **({"detector": detector} if detector is not None else {}))


def distances(real: torch.Tensor, other: torch.Tensor) -> dict:
    """W1 of energy and depth, FPD and KPD between two sets of showers (N, 3, 16, 16) in GeV."""
    a, b = observables(real), observables(other)
    matrix = lambda obs: torch.stack(list(obs.values()), 1).numpy()  # noqa: E731
    fpd, fpd_error = frechet_physics_distance(matrix(a), matrix(b))
    kpd, kpd_error = kernel_physics_distance(matrix(a), matrix(b))
    return {"w1_energy_gev": wasserstein_1d(a["energy"], b["energy"]), "w1_depth_x0": wasserstein_1d(a["depth"], b["depth"]),
            "fpd": fpd, "fpd_error": fpd_error, "kpd": kpd, "kpd_error": kpd_error}


def generated(model, n: int, seed: int = 0) -> torch.Tensor:  # noqa: ANN001
    """n showers in GeV from a class-conditional model, every class in turn (as class_showers)."""
    labels = torch.arange(n) % model.num_classes
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return torch.cat([decode(model.generate(len(y), labels=y, generator=generator)) for y in labels.split(500)])


def showers_per_second(make, n: int, seconds: float = 20.0) -> float:  # noqa: ANN001
    """Showers per second of make(k) (k showers), over batches of up to 500 until n showers or `seconds`."""
    done, start = 0, time.perf_counter()
    while done < n and time.perf_counter() - start < seconds:
        make(min(500, n - done))
        done += min(500, n - done)
    return done / (time.perf_counter() - start)


METRICS = ["physics", "fpd", "kpd", "calo-auc", "calo-response"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--showers", type=int, default=1000, help="held-out showers each model is scored on")
    parser.add_argument("--speed-showers", type=int, default=2000, help="at most this many, and at most 20 s, per model")
    parser.add_argument("--runs", default="benchmarks/runs/fast_simulation")
    parser.add_argument("--out", default="benchmarks/results/fast_simulation.json")
    parser.add_argument("--picture", default="docs/calo.png")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.showers, args.speed_showers = 20, 200, 200
        args.runs, args.out, args.picture = args.runs + "-quick", args.out.replace(".json", "-quick.json"), ""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    start = time.time()
    test = build_dataset(DataConfig(name="calo", split="test", max_images=args.showers))
    real = decode(test.images.float() / 127.5 - 1)  # (n, 3, 16, 16) GeV, what the generators imitate, held out
    simulator_rate = showers_per_second(lambda n: class_showers(n, seed=99), args.speed_showers)
    rows = {"simulation, another sample (floor)": {**distances(real, torch.from_numpy(class_showers(args.showers, 1234)).double()),
                                                   "showers_per_s": simulator_rate},
            "simulation vs 'data' conditions": distances(real, torch.from_numpy(class_showers(args.showers, 1234, DATA)).double())}
    samples = {}
    for preset in args.presets:
        run = Path(args.runs) / preset
        seconds = train_once(preset, run, args.steps, {"train.eval_every": None})
        scores = {s.name: s for s in genzoo.evaluate(run, METRICS, split="test", num_samples=args.showers,
                                                     num_real=args.showers)}
        model = genzoo.load(run)
        samples[preset] = generated(model, args.showers)  # for the picture
        generated(model, 10)  # warm-up
        rate = showers_per_second(lambda n: generated(model, n, seed=1), args.speed_showers)  # noqa: B023
        responses = [s.value for name, s in scores.items() if name.startswith("response")]
        rows[f"{PRESETS[preset]} ({preset})"] = {
            "w1_energy_gev": scores["w1-energy"].value, "w1_depth_x0": scores["w1-depth"].value,
            "fpd": scores["fpd"].value, "fpd_error": scores["fpd"].std, "kpd": scores["kpd"].value,
            "kpd_error": scores["kpd"].std, "steps": args.steps, "train_seconds": round(seconds, 1),
            "calo_auc": scores["calo-auc"].value, "mean_abs_response_error": float(np.mean([abs(v - 1) for v in responses])),
            "showers_per_s": rate, "speed_up": rate / simulator_rate}
        print(json.dumps({"model": preset, **rows[f"{PRESETS[preset]} ({preset})"]}), flush=True)

    print(f"\n| against {args.showers} held-out simulated showers | steps (CPU min) | W1 energy (GeV) | W1 depth (X0) "
          "| FPD | KPD | AUC | mean abs(response - 1) | showers/s | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    cell = lambda row, key, spec: format(row[key], spec) if key in row else "–"  # noqa: E731
    for name, row in rows.items():
        budget = f"{row['steps']} ({row['train_seconds'] / 60:.1f})" if "steps" in row else "–"
        print(f"| {name} | {budget} | {row['w1_energy_gev']:.3f} | {row['w1_depth_x0']:.3f} | "
              f"{row['fpd']:.4g} ± {row['fpd_error']:.2g} | {row['kpd']:.4g} ± {row['kpd_error']:.2g} | "
              f"{cell(row, 'calo_auc', '.3f')} | {cell(row, 'mean_abs_response_error', '.3f')} | "
              f"{cell(row, 'showers_per_s', '.0f')} | {('x' + format(row['speed_up'], '.3g')) if 'speed_up' in row else '–'} |")
    if args.picture:
        picture(real, samples, torch.from_numpy(class_showers(args.showers, 1234, DATA)).double(), args.picture)
    result = {"rows": rows, "showers": args.showers, "wall_seconds": round(time.time() - start, 1),
              "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, CPU",
              "torch": torch.__version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['wall_seconds']} s)")


def picture(real: torch.Tensor, samples: dict[str, torch.Tensor], shifted: torch.Tensor, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = {"simulation (test split)": (real, {"color": "black", "linewidth": 1.6}),
            **{PRESETS[p]: (x, {"color": c}) for (p, x), c in zip(samples.items(), ("crimson", "darkorange", "seagreen"))},
            "'data' conditions": (shifted, {"color": "steelblue", "linestyle": "--"})}
    obs = {name: observables(x) for name, (x, _) in sets.items()}
    panels = (("energy", "total visible energy (GeV)", True), ("depth", "mean depth (X0)", False),
              ("width_1", "lateral width, middle layer (cells)", False), ("fraction_0", "energy fraction, layer 0", False))
    figure, axes = plt.subplots(1, len(panels), figsize=(15, 3.3))
    for axis, (key, label, log) in zip(axes, panels):
        edges = np.histogram_bin_edges(obs["simulation (test split)"][key].numpy(), bins=40)
        for name, (_, style) in sets.items():
            axis.hist(np.clip(obs[name][key].numpy(), edges[0], edges[-1]), bins=edges, histtype="step", density=True,
                      label=name, **style)
        axis.set_xlabel(label)
        axis.set_yscale("log" if log else "linear")
    axes[0].legend(fontsize=7)
    figure.suptitle("toy calorimeter: e- and pi+ at 5-100 GeV, generated vs simulated (values outside the range "
                    "drawn in the end bins)", fontsize=9)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()

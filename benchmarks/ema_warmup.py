"""EMA warm-up on a short DCGAN run: FID of the live weights against the EMA weights, with and without warm-up.

Why: a user's first runs are short, and what they are shown by default are the EMA weights. With a fixed
decay of 0.999 and no warm-up the average is still 0.999^300 = 74% initial weights after 300 steps, and
samples as a grey texture; with the warm-up (`train.ema_warmup`, genzoo/train/ema.py) the decay at step
t is min(0.999, (1 + t) / (10 + t)), so the average follows the weights early and smooths them later.

What is measured: the `dcgan` preset (non-saturating loss, DCGAN networks 64 wide, Adam 2e-4 (0.5,
0.999), EMA 0.999 of the generator) on the full Fashion-MNIST training split, with the batch given by
--batch (64 by default, half the preset's 128, to keep the CPU budget), trained by genzoo's `Trainer`
one `train_step` at a time. One training run per seed keeps both averages: the trainer's EMA (with
warm-up) and a second `EMA` of the same networks without warm-up, updated after every step; the live
weights are the same for both (an average never feeds back into training). At each --eval-at step, FID
in genzoo's `fmnist` features of --samples samples from each set of weights (BatchNorm in eval mode)
against the 10,000 Fashion-MNIST test images; the same seed gives each set the same latent codes.

Run: nice python benchmarks/ema_warmup.py [--steps 300] [--eval-at 100,300] [--seeds 0,1,2] [--batch 64]
The table is printed and a JSON file is written (default benchmarks/results/ema_warmup.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from genzoo.config import DataConfig, load_config
from genzoo.metrics import evaluate
from genzoo.train.ema import EMA
from genzoo.train.trainer import Trainer

RESULTS = Path(__file__).resolve().parent / "results"
WEIGHTS = ("live", "ema_warmup", "ema_no_warmup")
LABELS = {"live": "live weights", "ema_warmup": "EMA, warm-up", "ema_no_warmup": "EMA, no warm-up"}


def fid(model: torch.nn.Module, samples: int, seed: int) -> float:
    state = torch.get_rng_state()  # scoring draws nothing from the training's random stream
    was_training = model.training
    model.eval()
    try:
        scores = evaluate(model, ["fid"], data=DataConfig(name="fashion-mnist", split="test"), num_samples=samples,
                          num_real=10_000, seed=seed)
    finally:
        model.train(was_training)
        torch.set_rng_state(state)
    return scores[0].value


def run_seed(seed: int, steps: int, eval_at: list[int], batch: int, samples: int) -> list[dict]:
    config = load_config("dcgan", [f"train.steps={steps}", f"train.batch_size={batch}", f"train.seed={seed}",
                                   "train.ema_warmup=true"])
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(config, Path(folder) / "run", progress=False)
        plain = EMA(trainer.model, config.train.ema_decay, trainer.model.ema_modules, warmup=False)
        rows, sums, seconds = [], {}, 0.0
        while trainer.step < steps:
            start = time.perf_counter()
            trainer.train_step(sums)
            plain.update(trainer.step)
            seconds += time.perf_counter() - start
            if trainer.step in eval_at:
                models = {"live": trainer.model, "ema_warmup": trainer.ema.model, "ema_no_warmup": plain.model}
                row = {"seed": seed, "step": trainer.step, "train_s": seconds,
                       **{name: fid(model, samples, seed) for name, model in models.items()}}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-at", default="100,300")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=RESULTS / "ema_warmup.json")
    args = parser.parse_args()
    eval_at = sorted({int(s) for s in args.eval_at.split(",")} | {args.steps})
    seeds = [int(s) for s in args.seeds.split(",")]

    started = time.process_time()
    rows = [row for seed in seeds for row in run_seed(seed, args.steps, eval_at, args.batch, args.samples)]
    summary = []
    for step in eval_at:
        at = [row for row in rows if row["step"] == step]
        summary.append({"step": step, **{name: {"mean": statistics.fmean(r[name] for r in at),
                                                "std": statistics.stdev(r[name] for r in at) if len(at) > 1 else 0.0}
                                         for name in WEIGHTS}})
    report = {"benchmark": "ema_warmup", "preset": "dcgan", "batch_size": args.batch, "steps": args.steps,
              "seeds": seeds, "samples": args.samples, "reference": "fashion-mnist test, 10,000 images",
              "features": "fmnist", "ema_decay": 0.999, "torch": torch.__version__, "python": platform.python_version(),
              "cpus": os.cpu_count(), "cpu_s": time.process_time() - started, "time": time.strftime("%Y-%m-%d %H:%M"),
              "runs": rows, "summary": summary}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")

    from rich.console import Console
    from rich.table import Table

    table = Table("step", *(f"FID-FMNIST, {LABELS[name]}" for name in WEIGHTS),
                  title=f"dcgan preset, batch {args.batch}, seeds {args.seeds}: mean ± std over seeds")
    for entry in summary:
        table.add_row(str(entry["step"]), *(f"{entry[name]['mean']:.1f} ± {entry[name]['std']:.1f}" for name in WEIGHTS))
    Console().print(table)
    print(f"{report['cpu_s'] / 60:.1f} CPU minutes; wrote {args.json}")


if __name__ == "__main__":
    main()

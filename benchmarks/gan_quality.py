"""GAN quality on Fashion-MNIST: every GAN preset under one fixed budget, scored the same way.

Each preset (objective, architecture, conditioning as the preset sets them) is trained for
`--steps` steps of batch `--batch` with the networks' widths set to `--width`, on the full
Fashion-MNIST train split, then scored on `--samples` samples (EMA generator) against the test
split with the `fmnist` feature network: FID-FMNIST, precision/recall, density/coverage, the
number of classes covered and, for conditional presets, the share of samples classified as the
class asked for. Prints a table, writes JSON and one sample grid per preset.

    python benchmarks/gan_quality.py                    # CPU budget: 1,500 steps, width 32
    python benchmarks/gan_quality.py --steps 20000 --width 64 --batch 128   # a GPU budget
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import genzoo
from genzoo.config import build_config, load_config
from genzoo.metrics.evaluate import evaluate
from genzoo.api import make_trainer

PRESETS = ("dcgan", "dcgan-minimax", "lsgan", "wgan", "wgan-gp", "hinge", "sngan", "cgan", "acgan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--ema", type=float, default=0.99, help="EMA decay for every preset (0.999 needs a longer budget)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gan_quality"))
    args = parser.parse_args()
    rows = []
    for preset in args.presets.split(","):
        raw = load_config(preset).model_dump(mode="json")
        raw["model"].update(generator_width=args.width, discriminator_width=args.width)
        raw["train"].update(steps=args.steps, batch_size=args.batch, log_every=100, sample_every=args.steps,
                            checkpoint_every=args.steps, ema_decay=args.ema)
        run = args.out / preset
        if run.exists():
            import shutil

            shutil.rmtree(run)
        start = time.perf_counter()
        make_trainer(build_config(raw), run, progress=False).fit()
        seconds = time.perf_counter() - start
        metrics = ["fid", "pr", "dc", "variety"] + (["label-accuracy"] if raw["model"].get("conditional", "none") != "none" else [])
        scores = evaluate(run, metrics, split="test", num_samples=args.samples, num_real=10_000)
        row = {"preset": preset, "objective": raw["model"]["objective"], "train_seconds": seconds,
               **{s.name: s.value for s in scores}}
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    columns = ["fid-fmnist", "precision-fmnist", "recall-fmnist", "density-fmnist", "coverage-fmnist",
               "classes-fmnist", "label-accuracy-fmnist", "train_seconds"]
    print(f"\n{'preset':<14}" + "".join(f"{c.replace('-fmnist', ''):>15}" for c in columns))
    for row in rows:
        print(f"{row['preset']:<14}" + "".join(f"{row[c]:>15.3f}" if c in row else f"{'-':>15}" for c in columns))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else (platform.processor() or platform.machine())
    print(f"budget: {args.steps} steps of batch {args.batch}, widths {args.width}, EMA {args.ema}, on {device}; "
          f"{args.samples} EMA samples vs the 10,000 test images, fmnist features")
    (args.out / "gan_quality.json").write_text(json.dumps({"device": device, "torch": torch.__version__, "steps": args.steps,
                                                           "batch": args.batch, "width": args.width, "ema": args.ema, "rows": rows,
                                                           "genzoo": genzoo.__version__}, indent=2))


if __name__ == "__main__":
    main()

"""Sanity of the offline metrics: FID-FMNIST, precision and recall of sets whose order is known.

    real train sample  vs  the test split      (same distribution: FID near 0, P and R near 1)
    the demo's model   vs  the test split      (a small DCGAN trained ~2 minutes: in between)
    uniform noise      vs  the test split      (nothing like clothes: FID large, P near 0)

All sets hold `--num` images (default 10,000), scored with genzoo's `fmnist` feature network
against the 10,000-image Fashion-MNIST test split. Prints a table and writes JSON.

    python benchmarks/eval_sanity.py --demo runs/demo
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import genzoo
from genzoo.config import DataConfig
from genzoo.data import ImageData, build_dataset
from genzoo.metrics.evaluate import evaluate_data
from genzoo.metrics.features import load_features

METRICS = ("fid", "pr")


def generated(run: Path, n: int, seed: int) -> ImageData:
    model = genzoo.load(run)
    generator = torch.Generator().manual_seed(seed)
    images = torch.cat([model.generate(min(500, n - i), generator=generator) for i in range(0, n, 500)])
    return ImageData(((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8), source=f"samples of {run}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, default=Path("runs/demo"), help="run folder of the demo's model")
    parser.add_argument("--num", type=int, default=10_000, help="images per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/eval_sanity.json"))
    args = parser.parse_args()

    test = build_dataset(DataConfig(name="fashion-mnist", split="test"))
    train = build_dataset(DataConfig(name="fashion-mnist", split="train"))
    if train.notes:
        raise SystemExit("needs the full Fashion-MNIST (Debian package dataset-fashion-mnist): " + train.notes[0])
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))[: args.num]
    sets = {"real train sample": ImageData(train.images[order], source="Fashion-MNIST train, random sample")}
    if (args.demo / "model.safetensors").exists():
        sets["demo model"] = generated(args.demo, args.num, args.seed)
    noise = torch.randint(0, 256, (args.num, 1, 28, 28), generator=torch.Generator().manual_seed(args.seed), dtype=torch.uint8)
    sets["uniform noise"] = ImageData(noise, source="uniform noise")

    network = load_features("fmnist")
    reference = {"dataset": "fashion-mnist", "split": "test", "source": test.source}
    rows = []
    for name, fake in sets.items():
        start = time.perf_counter()
        scores = evaluate_data(test, fake, METRICS, reference=reference, network=network, num_samples=args.num,
                               num_real=len(test), seed=args.seed)
        rows.append({"set": name, **{s.name: s.value for s in scores}, "seconds": time.perf_counter() - start,
                     "protocol": scores[0].protocol})
    print(f"{'set':<20} {'fid-fmnist':>11} {'precision':>10} {'recall':>8}")
    for row in rows:
        print(f"{row['set']:<20} {row['fid-fmnist']:>11.3f} {row['precision-fmnist']:>10.3f} {row['recall-fmnist']:>8.3f}")
    protocol = rows[0]["protocol"]
    print(f"protocol: {protocol['extractor']} features (sha256 {protocol['extractor_sha256'][:12]}), n_real "
          f"{protocol['n_real']} (test split), n_fake {protocol['n_fake']}, k=3 for P/R, seed {args.seed}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                                     "rows": rows}, indent=2, default=str))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

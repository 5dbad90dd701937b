"""Evaluation speed: feature extraction and FID + KID + PR + DC, against torchmetrics' FID.

On the CPU: the `fmnist` feature network, 10k real (Fashion-MNIST test) vs 10k "fake" (a train
sample). On CUDA (when present, or --device cuda): the FID Inception-v3 at 299 px with random
weights (same cost as the real ones; the real weights cannot be had offline), 50k vs 50k.
In the same run, torchmetrics' FrechetInceptionDistance is fed the same images through the same
feature network, and both FIDs are printed with their relative difference. Where the Fashion-MNIST
train split is not installed (genzoo then falls back to its embedded test split, e.g. on a GPU
machine with no datasets), the "fake" set is the test images mirrored left to right, so that the two
sets still differ.

    python benchmarks/eval_speed.py [--device cpu|cuda] [--num 10000] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import genzoo  # noqa: F401
from genzoo.config import DataConfig
from genzoo.data import build_dataset
from genzoo.metrics.context import extract
from genzoo.metrics.features import load_features
from genzoo.metrics.functional import (density_coverage, fid_from_moments, kernel_inception_distance,
                                       precision_recall)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def images(split: str, n: int, channels: int) -> tuple[torch.Tensor, str]:
    """n images of a Fashion-MNIST split, (n, C, 28, 28) uint8, and where they came from."""
    data = build_dataset(DataConfig(name="fashion-mnist", split=split, channels=channels))
    index = torch.arange(n) % len(data)  # repeats the split when more images are asked than it has
    return data.images[index], data.source


class TorchmetricsFeatures(nn.Module):
    """uint8 images -> the same genzoo features, in the form torchmetrics' FID wants."""

    def __init__(self, network) -> None:
        super().__init__()
        self.network = network
        # without it torchmetrics probes the network with a CPU image, which fails once the network is on a GPU
        self.num_features = network.feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x.float() / 127.5 - 1.0)["features"].double()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--num", type=int, default=None, help="images per side [10,000 on CPU, 50,000 on CUDA]")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but no CUDA GPU is visible; use --device auto or cpu.")
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    on_gpu = device.type == "cuda"
    n = args.num or (50_000 if on_gpu else 10_000)
    if on_gpu:  # the Inception path, random weights saved to a file and loaded like real ones
        from genzoo.metrics.inception import FIDInceptionV3

        weights = Path(tempfile.mkdtemp()) / "random_inception.pth"
        torch.save(FIDInceptionV3().state_dict(), weights)
        network = load_features("inception", str(weights)).to(device)
    else:
        network = load_features("fmnist").to(device)
    (real, real_source), (fake, fake_source) = images("test", n, network.channels), images("train", n, network.channels)
    if fake_source == real_source:  # no train split here: genzoo fell back to the test split
        fake, fake_source = fake.flip(-1), f"{real_source}, mirrored left to right"
    batches = lambda x: (x[i : i + args.batch].float().to(device) / 127.5 - 1 for i in range(0, len(x), args.batch))  # noqa: E731

    timings = {}
    print(f"{network.name} features of {n:,} + {n:,} images", flush=True)  # progress: a log cut short says where
    synchronize(device)
    start = time.perf_counter()
    real_set = extract(batches(real), network, "real", device)
    fake_set = extract(batches(fake), network, "fake", device)
    synchronize(device)
    timings["features"] = time.perf_counter() - start
    print("FID, KID, precision/recall, density/coverage", flush=True)
    start = time.perf_counter()
    scores = {"fid": fid_from_moments(real_set.moments, fake_set.moments)}
    scores["kid"] = kernel_inception_distance(real_set.features, fake_set.features, num_subsets=100,
                                              subset_size=1000, generator=torch.Generator().manual_seed(0))[0]
    scores.update(precision_recall(real_set.features.to(device), fake_set.features.to(device), k=3))
    scores.update(density_coverage(real_set.features.to(device), fake_set.features.to(device), k=5))
    synchronize(device)
    timings["fid+kid+pr+dc"] = time.perf_counter() - start
    timings["genzoo total"] = timings["features"] + timings["fid+kid+pr+dc"]

    from torchmetrics.image.fid import FrechetInceptionDistance

    print("torchmetrics FID", flush=True)
    reference = FrechetInceptionDistance(feature=TorchmetricsFeatures(network), normalize=False).to(device)
    synchronize(device)
    start = time.perf_counter()
    for i in range(0, n, args.batch):
        reference.update(real[i : i + args.batch].to(device), real=True)
        reference.update(fake[i : i + args.batch].to(device), real=False)
    torchmetrics_fid = float(reference.compute())
    synchronize(device)
    timings["torchmetrics FID only"] = time.perf_counter() - start

    name = torch.cuda.get_device_name() if on_gpu else (platform.processor() or platform.machine())
    print(f"{network.name} features, {n:,} vs {n:,} images, batch {args.batch}, on {device.type} ({name}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"real: {real_source}; fake: {fake_source}")
    print(f"{'what':<26}{'seconds':>9}{'images/s':>12}")
    for what, seconds in timings.items():
        rate = f"{2 * n / seconds:>12,.0f}" if what in ("features", "torchmetrics FID only") else f"{'':>12}"
        print(f"{what:<26}{seconds:>9.2f}{rate}")
    difference = abs(scores["fid"] - torchmetrics_fid) / abs(torchmetrics_fid)
    print(f"FID genzoo {scores['fid']:.6f}  torchmetrics {torchmetrics_fid:.6f}  relative difference {difference:.1e}")
    print(f"genzoo all four metrics / torchmetrics FID alone: {timings['genzoo total'] / timings['torchmetrics FID only']:.2f}x the time")
    if on_gpu:
        print("target (one H100): 50k vs 50k, all metrics, within 10 s")
    out = args.json or Path(f"benchmarks/results/eval_speed-{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": name, "torch": torch.__version__, "extractor": network.name, "n": n,
                               "batch": args.batch, "real": real_source, "fake": fake_source, "timings_s": timings, "scores": scores,
                               "torchmetrics_fid": torchmetrics_fid, "fid_relative_difference": difference}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

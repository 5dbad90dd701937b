"""The chairs generator (Dosovitskiy et al. 2015) with squared error against squared error + perceptual
loss, on rendered chairs, measured on (chair, view) pairs it never saw; and the renderer's speed.

- Renderer: `--chairs` chairs x 48 views (24 azimuths x 20/30 degrees) rendered from nothing (no cache)
  on one thread: images per CPU second (and the wall clock, which on a shared machine says more about
  the other load than about the renderer).
- Training: the `chairs` family (`code: identity`, the paper's one-hot chair number) on the train split
  (azimuths 0, 15, ..., 345 degrees), `--steps` steps of batch `--batch`, Adam 5e-4 (0.9, 0.999), no EMA,
  once with `loss: mse` and once with `loss: {mse: 1, perceptual: 0.05}` (fmnist features); nothing
  else differs.
- Held out: `--eval` random (chair, view) pairs of the test split, the same chairs at the azimuths
  halfway between the training ones (7.5, 22.5, ... degrees). Against the true render: MSE (pixels in
  [0, 1]), PSNR and SSIM (genzoo.metrics.similarity); FID-FMNIST between the model's and the true
  images (fmnist features: the only offline feature network, so a rough, grey, 28 px view of
  sharpness); sharpness = mean gradient magnitude of the model's images / that of the true ones
  (1: as crisp as the renders; MSE's blur shows as < 1).
- Speed: genzoo's training step against a plain eager PyTorch loop (the same model, Adam and batches), in
  alternating rounds, the fastest round of each (benchmarks/step_speed.py); and the CPU time of the whole
  run (one thread by default: on a shared machine the wall clock says more about the other load).
Prints a table, writes JSON, and pictures: held-out views (truth / mse / mse + perceptual), two chairs
turning through unseen views and walks between them, and a sample of the rendered dataset.

    nice python benchmarks/chairs.py --picture docs/      # CPU budget, about 30 minutes on 2 cores
    python benchmarks/chairs.py --quick                   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

import genzoo
from genzoo.api import make_trainer
from genzoo.config import DataConfig, build_config
from genzoo.data import build_dataset
from genzoo.data import chairs as chair_data
from genzoo.metrics.features import load_features
from genzoo.metrics.functional import RunningMoments, fid_from_moments
from genzoo.metrics.similarity import psnr, ssim
from genzoo.report.grids import save_grid

sys.path.insert(0, str(Path(__file__).parent))
from step_speed import trainer_vs_plain  # noqa: E402  (benchmarks/step_speed.py)

LOSSES = {"mse": "mse", "mse + perceptual": {"mse": 1.0, "perceptual": 0.05}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--chairs", type=int, default=100, help="chairs in the training set (48 views each)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--eval", type=int, default=1000, help="held-out (chair, view) pairs")
    parser.add_argument("--losses", default=",".join(LOSSES), help="comma list of: " + ", ".join(LOSSES))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (on a shared machine one wastes nothing waiting)")
    parser.add_argument("--reuse", action="store_true",
                        help="take what is already measured in --out (row.json beside each run, render.json): run losses "
                             "in parallel processes with --losses, then once more with --reuse for the table and pictures")
    parser.add_argument("--quick", action="store_true", help="smoke budget: 40 chairs, 60 steps, 300 pairs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/chairs"))
    parser.add_argument("--picture", type=Path, default=None, help="also copy the pictures into this folder (docs/)")
    args = parser.parse_args()
    if args.quick:
        args.chairs, args.steps, args.eval = 40, 60, 300
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    images = args.chairs * chair_data.AZIMUTHS * len(chair_data.ELEVATIONS)

    if args.reuse and (args.out / "render.json").is_file():
        render = json.loads((args.out / "render.json").read_text())
    else:
        render = _render_speed(images, args.size)
        (args.out / "render.json").write_text(json.dumps(render, indent=2) + "\n")
    print(f"renderer: {render['images']:,} images at {args.size} px in {render['cpu_seconds']:.1f} CPU s on one thread "
          f"({render['images_per_cpu_s']:,.0f} images per CPU second; {render['seconds']:.1f} s wall)", flush=True)
    test = build_dataset(DataConfig(name="chairs", split="test", max_images=images, image_size=args.size))
    pairs = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[: args.eval]
    held_out = test.batch(pairs)
    features = load_features("fmnist")
    rows, models = [], {}
    for name in args.losses.split(","):
        loss = LOSSES[name]
        config = build_config({
            "family": "chairs", "model": {"code": "identity", "loss": loss, "width": args.width, "hidden": args.hidden},
            "data": {"name": "chairs", "max_images": images, "image_size": args.size},
            "train": {"steps": args.steps, "batch_size": args.batch, "lr": 5e-4, "betas": [0.9, 0.999], "log_every": 50,
                      "sample_every": args.steps, "checkpoint_every": args.steps},
        })
        run = args.out / ("mse" if loss == "mse" else "mse_perceptual")
        if args.reuse and (run / "row.json").is_file():
            rows.append(json.loads((run / "row.json").read_text()))
            models[name] = genzoo.load(run)
            continue
        shutil.rmtree(run, ignore_errors=True)
        trainer = make_trainer(config, run, progress=False)
        start, cpu = time.perf_counter(), time.process_time()
        trainer.fit()
        train_seconds, train_cpu = time.perf_counter() - start, time.process_time() - cpu
        model = genzoo.load(run)
        models[name] = model
        speed = trainer_vs_plain(config)
        row = {"loss": name, "train_seconds": train_seconds, "train_cpu_seconds": train_cpu,
               "cpu_ms_per_step": 1000 * train_cpu / args.steps, "genzoo_images_per_s": speed["genzoo"],
               "plain_images_per_s": speed["plain"], "speed_ratio": speed["ratio"], **_held_out_scores(model, held_out, features)}
        rows.append(row)
        (run / "row.json").write_text(json.dumps(row, indent=2) + "\n")
        print(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)), flush=True)

    _print_table(rows, args)
    result = {"benchmark": "chairs", "device": "cpu", "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "chairs": args.chairs, "train_images": images, "size": args.size,
              "steps": args.steps, "batch": args.batch, "width": args.width, "hidden": args.hidden,
              "held_out_pairs": args.eval, "renderer": render, "extractor": "fmnist", "rows": rows}
    (args.out / "chairs.json").write_text(json.dumps(result, indent=2) + "\n")
    written = _pictures(models, held_out, args.out)
    if args.picture is not None:
        for path in written:
            shutil.copy(path, args.picture / path.name)
    print(f"wrote {args.out / 'chairs.json'} and " + ", ".join(str(p) for p in written))


def _render_speed(images: int, size: int) -> dict:
    """Render the training set into an empty cache on one thread: CPU seconds (what the work costs, nearly
    whatever else runs on the machine) and wall seconds (what it took here)."""
    previous, threads = os.environ.get("GENZOO_CACHE"), torch.get_num_threads()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["GENZOO_CACHE"] = cache
        start, cpu = time.perf_counter(), time.process_time()
        build_dataset(DataConfig(name="chairs", max_images=images, image_size=size))
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    torch.set_num_threads(threads)
    if previous is None:
        os.environ.pop("GENZOO_CACHE")
    else:
        os.environ["GENZOO_CACHE"] = previous
    return {"images": images, "size": size, "threads": 1, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "images_per_cpu_s": images / cpu_seconds}


@torch.no_grad()
def _held_out_scores(model, batch: dict, features) -> dict:  # noqa: ANN001
    drawn = torch.cat([model.draw(c, v)[0] for c, v in zip(batch["chair"].split(250), batch["view"].split(250))])
    truth = batch["image"]
    fake01, real01 = (drawn + 1) / 2, (truth + 1) / 2
    moments = [RunningMoments().update(features(x)["features"].double()) for x in (truth, drawn)]
    return {"mse": float((fake01 - real01).pow(2).mean()), "psnr": float(psnr(fake01, real01).mean()),
            "ssim": float(ssim(fake01, real01).mean()), "fid_fmnist": fid_from_moments(*moments),
            "sharpness": float(_gradient(fake01) / _gradient(real01))}


def _gradient(images: torch.Tensor) -> torch.Tensor:
    dx, dy = images[..., :, 1:] - images[..., :, :-1], images[..., 1:, :] - images[..., :-1, :]
    return dx.abs().mean() + dy.abs().mean()


def _pictures(models: dict, held_out: dict, out: Path) -> list[Path]:
    """Held-out views: truth, then each model; a chair turning through unseen views; walks between chairs."""
    k = 10
    rows = [held_out["image"][:k]] + [model.draw(held_out["chair"][:k], held_out["view"][:k])[0] for model in models.values()]
    paths = [out / "chairs_mse_vs_perceptual.png", out / "chairs_rotation.png"]
    save_grid(torch.cat(rows), paths[0], k)
    azimuth = (torch.arange(12) + 0.5) * (2 * math.pi / 12)
    elevation = torch.full((12,), chair_data.ELEVATIONS[1])
    turning = []
    for chair in (3, 8):
        truth, _ = chair_data.render_views(chair_data.chair_types(chair_data.CHAIR_SEED, [chair]).expand(12, -1),
                                           azimuth, elevation, held_out["image"].shape[-1])
        turning += [truth] + [model.render(azimuth, elevation, chair) for model in models.values()]
    walks = [model.interpolate(3, 8, 12, math.radians(45), chair_data.ELEVATIONS[1]) for model in models.values()]
    save_grid(torch.cat(turning + walks), paths[1], 12)
    paths.append(out / "chairs_dataset.png")  # what the renderer makes: 8 chairs from 8 views, at 64 px
    views = torch.arange(8) * (2 * math.pi / 8) + math.radians(30)
    types = chair_data.chair_types(chair_data.CHAIR_SEED, range(8)).repeat_interleave(8, 0)
    images, _ = chair_data.render_views(types, views.repeat(8), torch.full((64,), chair_data.ELEVATIONS[1]), 64)
    save_grid(images, paths[2], 8)
    return paths


def _print_table(rows: list[dict], args) -> None:  # noqa: ANN001
    print(f"\n{args.chairs} chairs x 48 views at {args.size} px, {args.steps} steps of batch {args.batch}; "
          f"{args.eval} held-out (chair, unseen view) pairs")
    print("| loss | MSE | PSNR (dB) | SSIM | FID-FMNIST | sharpness | CPU ms / step | genzoo / plain loop |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['loss']} | {r['mse']:.4f} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['fid_fmnist']:.1f} | "
              f"{r['sharpness']:.2f} | {r['cpu_ms_per_step']:.0f} | {r['speed_ratio']:.2f}x |")


if __name__ == "__main__":
    main()

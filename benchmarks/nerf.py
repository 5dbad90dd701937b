"""NeRF on one rendered chair and the paper's ablations at small scale: PSNR/SSIM on held-out views.

Mildenhall et al. (2020), Table 2 ablates positional encoding, view dependence and hierarchical
sampling on the Blender scenes (complete model: PSNR 31.01, SSIM 0.947 at 800 x 800 after 100-300k
steps on a V100). Here the scene is `chair-views` (an armchair with a specular finish, `--views`
training cameras at `--size` px, on white) and the budget is a CPU's: a narrower network
(`--depth` x `--width`), fewer samples (N_c = `--coarse`, N_f = `--fine`), `--steps` steps of `--batch`
rays, Adam 5e-4 decaying exponentially to 5e-5 (the paper's schedule, compressed). Rows:
- complete: gamma(x) with L = 10, gamma(d) with L = 4, view-dependent colour, coarse + fine networks;
- no positional encoding: x and d fed as they are (L = 0);
- no view dependence: the colour head never sees d;
- no hierarchical sampling: one network, N_c + N_f stratified samples per ray (as many as the fine pass);
- no positional encoding with mip-NeRF's softplus density: at this scale the ReLU density of the plain
  no-encoding row can switch off everywhere and leave an empty scene; softplus cannot.
Measured on `--test` cameras of the test split (other random cameras than the training ones): PSNR and
SSIM of the rendered views against the renderer's images; training rays per second of genzoo's step and
of a plain eager PyTorch loop (the same model, Adam and rays; alternating rounds, the fastest of each:
benchmarks/step_speed.py); CPU time of training and of rendering one frame (one thread by default: on a
shared machine the wall clock says more about the other load than about the work). A last row scores an
all-white image (the empty scene on the white background): a row near it learned nothing but the background.
Prints a table, writes JSON, a picture (true test views, then each row's renders) and an orbit GIF of
the complete model.

    nice python benchmarks/nerf.py --picture docs/      # CPU budget, about 30 minutes on 2 cores
    python benchmarks/nerf.py --quick                   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

import genzoo
from genzoo.api import make_trainer
from genzoo.config import DataConfig, build_config
from genzoo.data import build_dataset
from genzoo.metrics.similarity import psnr, ssim
from genzoo.report.grids import save_gif, save_grid

sys.path.insert(0, str(Path(__file__).parent))
from step_speed import trainer_vs_plain  # noqa: E402  (benchmarks/step_speed.py)

ABLATIONS = {
    "complete": {},
    "no positional encoding": {"position_frequencies": 0, "direction_frequencies": 0},
    "no view dependence": {"view_dependent": False},
    "no hierarchical sampling": {"fine_samples": 0},
    "no positional encoding (softplus density)": {"position_frequencies": 0, "direction_frequencies": 0, "density": "softplus"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=",".join(ABLATIONS), help="comma list of: " + ", ".join(ABLATIONS))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256, help="rays per step")
    parser.add_argument("--views", type=int, default=50, help="training cameras")
    parser.add_argument("--test", type=int, default=10, help="held-out cameras")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--coarse", type=int, default=32)
    parser.add_argument("--fine", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (on a shared machine one wastes nothing waiting)")
    parser.add_argument("--reuse", action="store_true",
                        help="take rows already measured in --out (row.json beside each run): run rows in parallel processes "
                             "with --rows, then once more with --reuse for the table and pictures")
    parser.add_argument("--quick", action="store_true", help="smoke budget: 60 steps, 16 px, 3 test views")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/nerf"))
    parser.add_argument("--picture", type=Path, default=None, help="also copy the picture and GIF into this folder (docs/)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.size, args.test, args.views = 60, 16, 3, 10
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    test = build_dataset(DataConfig(name="chair-views", split="test", max_images=args.test, image_size=args.size))
    truth = test.images  # (T, 3, s, s) in [0, 1]
    rows, renders = [], {}
    for name in args.rows.split(","):
        settings = {"depth": args.depth, "width": args.width, "skip": args.depth // 2, "samples": args.coarse,
                    "fine_samples": args.fine, "lr_decay_steps": args.steps, **ABLATIONS[name]}
        if settings["fine_samples"] == 0:
            settings["samples"] = args.coarse + args.fine
        config = build_config({
            "family": "nerf", "model": settings,
            "data": {"name": "chair-views", "max_images": args.views, "image_size": args.size},
            "train": {"steps": args.steps, "batch_size": args.batch, "lr": 5e-4, "betas": [0.9, 0.999], "log_every": 50,
                      "sample_every": args.steps, "checkpoint_every": args.steps},
        })
        run = args.out / name.replace(" ", "_")
        if args.reuse and (run / "row.json").is_file():
            row, model = json.loads((run / "row.json").read_text()), genzoo.load(run)
            rows.append(row)
            renders[name] = model.render_poses(test.poses)
            continue
        shutil.rmtree(run, ignore_errors=True)
        trainer = make_trainer(config, run, progress=False)
        start, cpu = time.perf_counter(), time.process_time()
        trainer.fit()
        train_seconds, train_cpu = time.perf_counter() - start, time.process_time() - cpu
        model = genzoo.load(run)
        start, cpu = time.perf_counter(), time.process_time()
        rendered = model.render_poses(test.poses)  # (T, 3, s, s) in [0, 1]
        render_seconds, render_cpu = (time.perf_counter() - start) / len(test.poses), (time.process_time() - cpu) / len(test.poses)
        renders[name] = rendered
        row = {"row": name, "settings": settings, "psnr": float(psnr(rendered, truth).mean()),
               "ssim": float(ssim(rendered, truth).mean()) if args.size >= 11 else None,
               "train_seconds": train_seconds, "train_cpu_seconds": train_cpu,
               "rays_per_cpu_s": args.steps * args.batch / train_cpu, "render_seconds_per_frame": render_seconds,
               "render_cpu_seconds_per_frame": render_cpu}
        speed = trainer_vs_plain(config)
        row.update(rays_per_s=speed["genzoo"], plain_rays_per_s=speed["plain"], speed_ratio=speed["ratio"])
        rows.append(row)
        (run / "row.json").write_text(json.dumps(row, indent=2) + "\n")
        print(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)), flush=True)
        if name == "complete":
            azimuth = torch.arange(36) * (2 * math.pi / 36)
            frames = model.render(azimuth, torch.full((36,), math.radians(30)), size=2 * args.size)
            save_gif(frames, args.out / "nerf_orbit.gif", 12)

    white = torch.ones_like(truth)  # the empty scene: what a model that learned only the background scores
    blank = {"psnr": float(psnr(white, truth).mean()), "ssim": float(ssim(white, truth).mean()) if args.size >= 11 else None}
    _print_table(rows, args, blank)
    result = {"benchmark": "nerf", "device": "cpu", "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "steps": args.steps, "batch_rays": args.batch, "views": args.views,
              "test_views": args.test, "size": args.size, "rows": rows, "all_white": blank,
              "paper": {"psnr": 31.01, "ssim": 0.947, "data": "Blender synthetic scenes, 800 x 800"}}
    (args.out / "nerf.json").write_text(json.dumps(result, indent=2) + "\n")
    k = min(5, args.test)
    save_grid(torch.cat([truth[:k]] + [r[:k] for r in renders.values()]) * 2 - 1, args.out / "nerf_ablations.png", k)
    written = [args.out / "nerf_ablations.png"] + ([args.out / "nerf_orbit.gif"] if (args.out / "nerf_orbit.gif").exists() else [])
    if args.picture is not None:
        for path in written:
            shutil.copy(path, args.picture / path.name)
    print(f"wrote {args.out / 'nerf.json'} and " + ", ".join(str(p) for p in written))


def _print_table(rows: list[dict], args, blank: dict) -> None:  # noqa: ANN001
    print(f"\nchair-views: {args.views} training cameras at {args.size} px, {args.steps} steps of {args.batch} rays; "
          f"{args.test} held-out cameras")
    print("| row | PSNR (dB) | SSIM | train CPU min | rays / CPU s | genzoo / plain loop | render CPU s / frame |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ssim_text = "–" if r["ssim"] is None else f"{r['ssim']:.3f}"
        print(f"| {r['row']} | {r['psnr']:.2f} | {ssim_text} | {r['train_cpu_seconds'] / 60:.1f} | {r['rays_per_cpu_s']:,.0f} | "
              f"{r['speed_ratio']:.2f}x | {r['render_cpu_seconds_per_frame']:.2f} |")
    ssim_text = "–" if blank["ssim"] is None else f"{blank['ssim']:.3f}"
    print(f"| all-white image (the empty scene) | {blank['psnr']:.2f} | {ssim_text} | – | – | – | – |")


if __name__ == "__main__":
    main()

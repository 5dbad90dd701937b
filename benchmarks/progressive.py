"""Growing GANs on Fashion-MNIST 32 x 32: DCGAN vs ProGAN vs StyleGAN, and StyleGAN with vs without mixing.

Every model trains on the same number of images (`--steps` steps of batch `--batch`) of the Fashion-MNIST
train split padded to 32 x 32 (`data.pad_to=32`), on one CPU thread, with an EMA of its generator (0.999,
with warm-up). ProGAN and StyleGAN grow 4 -> 8 -> 16 -> 32 in seven equal phases (stable 4 x 4, then fade
and stable for each doubling). Then each is scored from its EMA generator: FID-FMNIST and precision /
recall (k = 3) of `--samples` samples against the 10,000 test images padded the same way, and the
perceptual path length (`genzoo.metrics.ppl`: fmnist features, eps = 1e-4, `--ppl-pairs` pairs; in z for
every model, also in w for StyleGAN). Speed: training images per CPU-second of the training process (one
thread: the machine is shared, so its wall time says little; it is reported too).

Prints a table, writes `progressive.json` and pictures under `--out`: the last preview of each stage
(`stages.png`), a style-mixing grid and a psi sweep for each StyleGAN. `--jobs N` trains N models at once,
each in its own process on its own thread (the same CPU time, less waiting on a shared machine).

    nice -n 10 python benchmarks/progressive.py                        # the README's CPU budget
    python benchmarks/progressive.py --steps 21000 --batch 64 --width 32 --max-width 256   # a GPU budget
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from PIL import Image, ImageDraw

import genzoo
from genzoo.callbacks import Previews
from genzoo.config import load_config
from genzoo.loading import load
from genzoo.metrics.evaluate import evaluate
from genzoo.report.grids import save_grid
from genzoo.style_space import psi_sweep, style_mixing_grid
from genzoo.train.trainer import Trainer

PHASES = 7  # 4 stable; 8 fade, stable; 16 fade, stable; 32 fade, stable


def configs(args: argparse.Namespace) -> dict[str, list[str]]:
    phase = args.steps // PHASES
    common = [f"train.steps={phase * PHASES}", f"train.batch_size={args.batch}", "train.ema_decay=0.999",
              "data.name=fashion-mnist", "data.pad_to=32", "train.log_every=50", f"train.sample_every={phase}",
              "train.num_preview=8", f"train.checkpoint_every={phase * PHASES}", "train.device=cpu"]
    growing = [f"model.width={args.width}", f"model.max_width={args.max_width}", f"model.latent_dim={args.latent}",
               f"model.fade_steps={phase}", f"model.stable_steps={phase}"]
    return {
        "dcgan": ["dcgan", *common, f"model.generator_width={args.dcgan_width}",
                  f"model.discriminator_width={args.dcgan_width}", f"model.latent_dim={args.latent}"],
        "progan": ["progan", *common, *growing],
        "stylegan": ["stylegan", *common, *growing],
        "stylegan-no-mixing": ["stylegan", *common, *growing, "model.style_mixing=0"],
    }


def train(name: str, items: list[str], out: Path) -> dict:
    run = out / name
    shutil.rmtree(run, ignore_errors=True)
    config = load_config(items[0], items[1:])
    wall, cpu = time.perf_counter(), time.process_time()
    Trainer(config, run, progress=False, callbacks=[Previews(config)]).fit()  # sample grids; no report, no evaluation
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    images = config.train.steps * config.train.batch_size
    return {"model": name, "family": config.family, "steps": config.train.steps, "images": images,
            "train_cpu_s": cpu, "train_wall_s": wall, "images_per_cpu_s": images / cpu,
            "parameters": sum(p.numel() for p in load(run).generator.parameters())}


def score(run: Path, args: argparse.Namespace) -> dict:
    cpu = time.process_time()
    scores = evaluate(run, ["fid", "pr"], split="test", num_samples=args.samples, num_real=10_000)
    scores += evaluate(run, ["ppl"], split="test", num_samples=args.ppl_pairs, num_real=args.ppl_pairs)
    return {**{s.name: s.value for s in scores}, "eval_cpu_s": time.process_time() - cpu,
            "protocols": {s.name: s.protocol for s in scores}}


def previews(run: Path, out: Path, name: str) -> None:
    """The preview written at the end of each stable phase (4, 8, 16, 32 px), side by side."""
    from genzoo.report.html import _stages
    from genzoo.train.log import read_log

    grids = sorted((run / "samples").glob("step-*.png"))
    stages = _stages(grids, read_log(run / "log.jsonl"))
    images = [Image.open(path).convert("RGB") for path in stages]
    width, height = sum(i.width for i in images) + 8 * (len(images) - 1), max(i.height for i in images) + 14
    sheet = Image.new("RGB", (width, height), "white")
    x = 0
    for image, caption in zip(images, stages.values()):
        sheet.paste(image, (x, 14))
        ImageDraw.Draw(sheet).text((x, 1), caption.split(",")[0], fill="black")
        x += image.width + 8
    sheet.save(out / f"{name}-stages.png")


def style_pictures(run: Path, out: Path, name: str) -> None:
    model = load(run)
    images, columns, _ = style_mixing_grid(model, rows=2, columns=6, generator=torch.Generator().manual_seed(0))
    save_grid(images, out / f"{name}-mixing.png", columns)
    save_grid(psi_sweep(model, rows=4, generator=torch.Generator().manual_seed(0)), out / f"{name}-psi.png", 5)


def run_model(name: str, items: list[str], args: argparse.Namespace) -> dict:
    """Train, score and draw one model (in a process of its own when --jobs > 1)."""
    torch.set_num_threads(args.threads)
    row = train(name, items, args.out)
    row.update(score(args.out / name, args))
    if row["family"] != "gan":
        previews(args.out / name, args.out, name)
    if row["family"] == "stylegan":
        style_pictures(args.out / name, args.out, name)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items() if k != "protocols"}),
          flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="dcgan,progan,stylegan,stylegan-no-mixing")
    parser.add_argument("--steps", type=int, default=2100, help="training steps (a multiple of 7: the growth phases)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--width", type=int, default=16, help="ProGAN/StyleGAN feature maps at 32 x 32, doubled per halving")
    parser.add_argument("--max-width", type=int, default=64)
    parser.add_argument("--dcgan-width", type=int, default=32)
    parser.add_argument("--latent", type=int, default=128)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--ppl-pairs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per model")
    parser.add_argument("--jobs", type=int, default=1, help="models trained at once, each in its own process")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/progressive"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = {name: items for name, items in configs(args).items() if name in args.models.split(",")}
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(run_model, name, items, args) for name, items in chosen.items()]
            rows = [future.result() for future in futures]
    else:
        rows = [run_model(name, items, args) for name, items in chosen.items()]
    columns = ["fid-fmnist", "precision-fmnist", "recall-fmnist", "ppl-z-fmnist", "ppl-w-fmnist", "images_per_cpu_s",
               "train_cpu_s", "train_wall_s"]
    print(f"\n{'model':<20}" + "".join(f"{c.replace('-fmnist', ''):>17}" for c in columns))
    for row in rows:
        print(f"{row['model']:<20}" + "".join(f"{row[c]:>17.3f}" if c in row else f"{'-':>17}" for c in columns))
    device = platform.processor() or platform.machine()
    phase = args.steps // PHASES
    print(f"budget: {phase * PHASES} steps of batch {args.batch} ({phase * PHASES * args.batch:,} images) per model, "
          f"{args.threads} CPU thread(s) per model on {device}; {args.samples} EMA samples vs the 10,000 test images "
          f"(fmnist features); PPL over {args.ppl_pairs} pairs; total CPU "
          f"{sum(r['train_cpu_s'] + r['eval_cpu_s'] for r in rows) / 60:.1f} min")
    (args.out / "progressive.json").write_text(json.dumps({
        "device": device, "threads": args.threads, "torch": torch.__version__, "genzoo": genzoo.__version__,
        "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

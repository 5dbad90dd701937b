"""Text to image on `shapes`: latent against pixel-space diffusion at one budget, a guidance sweep, GAN-CLS beside.

Everything runs on the `shapes` dataset (32 x 32 RGB, one or two coloured shapes, captioned; red triangles,
green squares and blue circles held out of training), in one process with one CPU thread:
1. the first stage: the `autoencoder-kl-shapes` preset (f = 4, 3 latent channels): reconstruction PSNR on
   the test split (Rombach et al. 2022, Fig. 1: 27.4 dB for their f = 4 autoencoder on ImageNet);
2. a speed probe: CPU seconds per training step (batch 64) of each second-stage model; each then trains for
   the same budget of CPU seconds (`--budget` minutes), which sets its number of steps:
   - latent diffusion: the `latent-diffusion-shapes` preset on the first stage's 3 x 8 x 8 latents;
   - pixel-space diffusion: the same family, text encoder and training settings on the 3 x 32 x 32 pixels
     (`first_stage: null`), with a U-Net of one more level at half the width (`PIXEL`);
   - GAN-CLS: the `gan-cls-shapes` preset;
3. per model: training images per CPU second, CPU seconds to sample 64 images (the default sampler: DDIM 20
   steps, guidance 3), FID-FMNIST of `--fid-samples` samples (prompts drawn from the training captions)
   against the test split, and prompt accuracy on `--prompts` seen and held-out prompts each (attributes
   measured back from the pixels: count, colour, shape, size, relation);
4. the guidance sweep of the latent model: s in 0, 1, 3, 6;
5. the ceilings: the real test images against their own captions, and FID-FMNIST of real train images.
Writes benchmarks/results/text2image.json, prints the tables, and draws docs/text2image_prompts.png (seen and
held-out prompts beside each model's samples) and docs/text2image_guidance.png. Finished runs in --out are
reused (delete them to retrain).

    python benchmarks/text2image.py --quick             # a smoke run: minutes
    python benchmarks/text2image.py                     # the README's table: about 10 CPU minutes, one thread
    python benchmarks/text2image.py --budget 8 --first-stage-steps 1000 --fid-samples 1000 --prompts 200  # a real one
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch

import genzoo
from genzoo.api import train as train_run
from genzoo.config import DataConfig, build_config, load_config
from genzoo.data import build_dataset
from genzoo.data.captions import CaptionedImages
from genzoo.metrics.evaluate import evaluate, evaluate_data
from genzoo.metrics.features import load_features
from genzoo.metrics.prompts import prompt_accuracy
from genzoo.registry import MODELS
from genzoo.report.grids import save_grid
from genzoo.report.prompts import prompt_figure
from genzoo.train.checkpoint import RunFolder

RESULTS, DOCS = Path("benchmarks/results"), Path("docs")
PIXEL = {"first_stage": None, "width": 32, "channel_multipliers": [1, 2, 2], "attention_resolutions": [8]}  # 32 -> 16 -> 8
GUIDANCE = (0.0, 1.0, 3.0, 6.0)  # 3: the preset's default, scored with the other models
FIGURE_PROMPTS = ("a large red circle", "a small blue square left of a large yellow triangle",
                  "a large green circle above a small red square",  # seen combinations
                  "a large red triangle", "a small green square right of a large yellow circle",
                  "a large blue circle below a small red triangle")  # held out of training


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def config_of(preset: str, model: dict | None = None, train: dict | None = None) -> dict:
    raw = load_config(preset).model_dump(mode="json")
    raw["model"].update(model or {})
    raw["train"].update(train or {})
    return raw


def probe(raw: dict, steps: int = 4) -> float:
    """CPU seconds per training step (every phase) at the config's batch size, after one warm-up step."""
    config = build_config({**raw, "train": {**raw["train"], "steps": 1}})
    data = build_dataset(config.data.model_copy(update={"max_images": 4 * config.train.batch_size}))
    model = MODELS.get(config.family)(config.model, data.info)
    optimizers = {group: torch.optim.Adam([p for p in params if p.requires_grad], 1e-4)
                  for group, params in model.param_groups().items()}
    batch = data.batch(torch.arange(config.train.batch_size))
    elapsed = 0.0
    for step in range(steps + 1):
        start = cpu_seconds()
        for phase in model.phases:
            loss = model(phase.name, batch)["total"]
            optimizers[phase.param_group].zero_grad()
            loss.backward()
            optimizers[phase.param_group].step()
        elapsed += (cpu_seconds() - start) if step else 0.0
    return elapsed / steps


def train(name: str, raw: dict, out: Path) -> tuple[Path, float]:
    """Train into out/name unless a finished run of this config is there; (run folder, CPU seconds it took)."""
    run = RunFolder(out / name)
    config = build_config(raw)
    record = run.path / "benchmark.json"
    if record.is_file() and run.config.is_file() and build_config(run.read_config()) == config:
        return run.path, json.loads(record.read_text())["train_cpu_s"]
    if run.path.exists():
        import shutil

        shutil.rmtree(run.path)
    print(f"training {name}: {config.train.steps} steps", flush=True)
    start = cpu_seconds()
    train_run(config, run.path, progress=False)
    seconds = cpu_seconds() - start
    record.write_text(json.dumps({"train_cpu_s": seconds}) + "\n")
    return run.path, seconds


def with_guidance(model, guidance: float):  # noqa: ANN001, ANN201
    """The model sampling at guidance s by default (what FID's sampler and the protocol then use)."""
    model.config = model.config.model_copy(update={"guidance": guidance})
    return model


def sampling_cpu_seconds(model, n: int = 64) -> float:  # noqa: ANN001
    prompts = [FIGURE_PROMPTS[i % 3] for i in range(n)]
    start = cpu_seconds()
    model.generate(n, prompts=prompts, generator=torch.Generator().manual_seed(0))
    return cpu_seconds() - start


def score(model, real: CaptionedImages, args: argparse.Namespace) -> dict:  # noqa: ANN001
    """FID-FMNIST against the test split and prompt accuracy on seen and held-out prompts."""
    fid = evaluate(model, ["fid"], data=DataConfig(name="shapes", split="test"), num_samples=args.fid_samples,
                   num_real=len(real), seed=0, use_cache=False)[0]
    row = {"fid_fmnist": fid.value, "fid_samples": args.fid_samples}
    for split in ("seen", "held-out"):
        values = prompt_accuracy(model, real.grammar, args.prompts, split == "held-out", seed=1)
        row.update({f"{split}/{name}": value for name, value in values.items()})
    return row


def figure(models: dict, path: Path) -> None:  # noqa: ANN001
    """Each prompt of FIGURE_PROMPTS beside 4 samples of each model."""
    images, labels = [], []
    for name, model in models.items():
        for prompt in FIGURE_PROMPTS:
            images.append(model.generate(4, prompts=prompt, generator=torch.Generator().manual_seed(3)))
            held = " (held out)" if prompt in FIGURE_PROMPTS[3:] else ""
            labels.append(f"{name}: {prompt}{held}")
    save_grid(prompt_figure(torch.cat(images), labels), path, columns=1)


def guidance_figure(model, path: Path) -> None:  # noqa: ANN001
    images, labels = [], []
    for prompt in (FIGURE_PROMPTS[1], FIGURE_PROMPTS[3]):
        for s in GUIDANCE:
            images.append(model.generate(6, prompts=prompt, guidance=s, generator=torch.Generator().manual_seed(4)))
            labels.append(f"s = {s:g}: {prompt}")
    save_grid(prompt_figure(torch.cat(images), labels), path, columns=1)


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    lines = ["| " + " | ".join(title for title, _, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [("–" if row.get(key) is None else format(row[key], fmt) if fmt else str(row[key])) for _, key, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="run folders [default: runs/text2image, runs/text2image-quick]")
    parser.add_argument("--budget", type=float, default=0.6, help="CPU minutes of training per second-stage model")
    parser.add_argument("--first-stage-steps", type=int, default=150, help="the preset has 1,000")
    parser.add_argument("--fid-samples", type=int, default=130)
    parser.add_argument("--prompts", type=int, default=48, help="prompts per split for prompt accuracy")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny budget and counts")
    args = parser.parse_args()
    if args.fid_samples <= 128:
        parser.error("--fid-samples must be at least 129: FID of the 128-dimensional fmnist features needs D + 1 samples")
    started_wall, started_cpu = time.time(), cpu_seconds()
    quick_model = {"sampling_steps": 5} if args.quick else {}
    if args.quick:
        args.budget, args.first_stage_steps, args.fid_samples, args.prompts = 0.25, 40, 130, 20
    args.out = args.out or Path("runs/text2image-quick" if args.quick else "runs/text2image")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"hardware": f"{platform.processor() or platform.machine()}, {args.threads} thread(s), shared 2-core machine",
                     "torch": torch.__version__, "budget_cpu_minutes": args.budget, "date": time.strftime("%Y-%m-%d")}

    # 1. the first stage
    ae_train = {"log_every": 50} | ({"steps": args.first_stage_steps} if args.first_stage_steps else {})
    ae_raw = config_of("autoencoder-kl-shapes", train=ae_train)
    ae_step = probe(ae_raw)
    ae_run, ae_cpu = train("autoencoder-kl-shapes", ae_raw, args.out)
    recon = {s.name: s.value for s in evaluate(ae_run, ["recon"], split="test", num_real=1000, use_cache=False)}
    results["first_stage"] = {"steps": ae_raw["train"]["steps"], "train_cpu_s": ae_cpu, "cpu_s_per_step": ae_step,
                              "psnr_test": recon["psnr"], "mse_test": recon["mse"], "n_test": 1000}
    print(f"first stage: {ae_raw['train']['steps']} steps, {ae_cpu / 60:.1f} CPU min, test PSNR {recon['psnr']:.2f} dB", flush=True)

    # 2. one budget of CPU seconds for each second-stage model
    raws = {"latent diffusion": config_of("latent-diffusion-shapes", {"first_stage": str(ae_run), **quick_model}),
            "pixel diffusion": config_of("latent-diffusion-shapes", {**PIXEL, **quick_model}),
            "GAN-CLS": config_of("gan-cls-shapes")}
    models, rows = {}, []
    real = build_dataset(DataConfig(name="shapes", split="test"))
    for name, raw in raws.items():
        per_step = probe(raw)
        steps = max(10, round(args.budget * 60 / per_step))
        raw["train"].update(steps=steps, log_every=50, sample_every=steps, checkpoint_every=steps, num_preview=16,
                            warmup_steps=min(raw["train"]["warmup_steps"], steps // 10))
        run, seconds = train(name.replace(" ", "-").lower(), raw, args.out)
        model = genzoo.load(run)
        models[name] = model
        row = {"model": name, "steps": steps, "train_cpu_s": seconds, "cpu_s_per_step": per_step,
               "train_images_per_cpu_s": raw["train"]["batch_size"] / per_step,
               "sample64_cpu_s": sampling_cpu_seconds(model), **score(model, real, args)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    results["models"] = rows

    # 3. the guidance sweep of the latent model
    sweep, default = [], raws["latent diffusion"]["model"]["guidance"]
    for s in (GUIDANCE[0], default) if args.quick else GUIDANCE:
        scores = rows[0] if s == default else score(with_guidance(models["latent diffusion"], s), real, args)
        row = {"guidance": s, **{k: v for k, v in scores.items() if k == "fid_fmnist" or "/" in k}}
        sweep.append(row)
        print(json.dumps(row), flush=True)
    with_guidance(models["latent diffusion"], default)
    results["guidance"] = sweep

    # 4. ceilings: real images against their own captions; real train images against the test reference
    indices = torch.arange(min(1000, len(real)))
    judged = real.grammar.judge(real.batch(indices)["image"], real.texts(indices))
    train_real = build_dataset(DataConfig(name="shapes", split="train", max_images=args.fid_samples))
    real_fid = evaluate_data(real, train_real, ["fid"], reference={"dataset": "shapes", "split": "test"},
                             network=load_features("fmnist"), num_samples=args.fid_samples, num_real=len(real))[0]
    results["real"] = {"fid_fmnist": real_fid.value, **{f"seen/{k}": float(torch.nanmean(v)) for k, v in judged.items()}}

    # 5. pictures, JSON, tables
    if not args.quick:
        DOCS.mkdir(exist_ok=True)
        figure(models, DOCS / "text2image_prompts.png")
        guidance_figure(models["latent diffusion"], DOCS / "text2image_guidance.png")
    results["total_cpu_minutes"] = (cpu_seconds() - started_cpu) / 60
    results["total_wall_minutes"] = (time.time() - started_wall) / 60  # on a machine shared with other jobs
    results["settings"] = {"first_stage_steps": ae_raw["train"]["steps"], "fid_samples": args.fid_samples,
                           "prompts_per_split": args.prompts, "threads": args.threads}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("text2image_quick.json" if args.quick else "text2image.json")
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfirst stage: PSNR {results['first_stage']['psnr_test']:.2f} dB on 1,000 test images "
          f"({results['first_stage']['steps']} steps, {results['first_stage']['train_cpu_s'] / 60:.1f} CPU min)")
    accuracy = [("seen: all", "seen/all", ".3f"), ("held-out: all", "held-out/all", ".3f"),
                ("held-out: colour", "held-out/colour", ".2f"), ("shape", "held-out/shape", ".2f"),
                ("size", "held-out/size", ".2f"), ("relation", "held-out/relation", ".2f")]
    print(table(rows + [{"model": "real test images", **results["real"]}],
                [("model", "model", ""), ("steps", "steps", ","), ("train img/CPU-s", "train_images_per_cpu_s", ".1f"),
                 ("CPU s / 64 samples", "sample64_cpu_s", ".1f"), ("FID-FMNIST", "fid_fmnist", ".1f"), *accuracy]))
    print(table(sweep, [("guidance s", "guidance", "g"), ("FID-FMNIST", "fid_fmnist", ".1f"), *accuracy]))
    print(f"{results['total_cpu_minutes']:.1f} CPU min, {results['total_wall_minutes']:.1f} min wall; wrote {path}")


if __name__ == "__main__":
    main()

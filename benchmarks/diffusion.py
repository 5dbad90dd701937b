"""Diffusion: sample quality against sampling steps and guidance, and U-Net speed against diffusers.

`quality`: trains the `ddpm` preset (unconditional) and the `ddpm-cfg` preset (class-conditional,
label dropout 0.1) on the Fashion-MNIST train split at a small budget (the U-Net narrowed by
--width/--blocks), then scores EMA samples against the 10,000 test images with the `fmnist` feature
network: FID-FMNIST, KID, precision/recall, with the samples per second of each setting,
- against the sampler: DDIM 10, 25, 50, 100 steps (eta 0) and DDPM ancestral with all 1,000 steps;
- against the classifier-free guidance scale of the conditional model (0 = unconditional, 1 = plain
  conditional), also with the share of samples the feature network classifies as the class asked for.
Writes benchmarks/results/diffusion_quality.json and docs/diffusion_steps.png (the same x_T through
every sampler) and docs/diffusion_guidance.png. FID needs at least 129 samples (128-d features);
rows with fewer report KID and precision/recall only (KID is unbiased at any sample count).

`speed`: the DDPM CIFAR-10 U-Net (32x32x3, channels (128, 256, 256, 256), 2 blocks per level,
attention at 16x16; 35.7 M parameters) as genzoo's `ddpm` family and as `diffusers.UNet2DModel`,
same device, same run: training images/s (MSE noise loss, AdamW) and DDIM-50 samples/s. genzoo runs
as its trainer and `generate` run it (on CUDA: bf16 autocast, channels_last, fused AdamW;
--compile adds torch.compile); diffusers runs plain (fp32, tf32 allowed) and with bf16 autocast +
channels_last + fused AdamW. Needs `pip install diffusers` (the `bench` and `test` extras).
`--smoke` shrinks both U-Nets alike (width 32, 2 levels, 1 block) to check the benchmark's code on a CPU
in seconds; its figures mean nothing.

    python benchmarks/diffusion.py quality --quick            # about 2-3 minutes on 2 CPU cores
    python benchmarks/diffusion.py quality                    # the CPU budget, about 15 minutes
    python benchmarks/diffusion.py quality --steps 20000 --width 64 --blocks 2 --batch 128 --samples 10000 --ddpm-samples 10000   # GPU
    python benchmarks/diffusion.py speed [--device cpu|cuda] [--compile] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

import torch

import genzoo
from genzoo.config import DataConfig, build_config, load_config
from genzoo.data import ImageData, build_dataset
from genzoo.metrics.context import EvalContext
from genzoo.metrics.evaluate import compute
from genzoo.metrics.features import load_features

RESULTS = Path("benchmarks/results")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name()
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- quality


def train_preset(preset: str, args: argparse.Namespace, out: Path) -> Path:
    raw = load_config(preset).model_dump(mode="json")
    raw["model"].update(width=args.width, blocks_per_level=args.blocks, attention_resolutions=[7], dropout=0.0)
    raw["data"].update(split="train")
    raw["train"].update(steps=args.steps, batch_size=args.batch, lr=args.lr, ema_decay=args.ema, log_every=50,
                        sample_every=args.steps, checkpoint_every=args.steps)
    run = out / preset
    if run.exists():
        shutil.rmtree(run)
    genzoo.train(build_config(raw), run, progress=False)
    return run


def timed_samples(model, n: int, batch: int, **options) -> tuple[torch.Tensor, torch.Tensor, float]:
    """n samples (uint8, as written to PNG) in batches, their labels, and the seconds the sampling took."""
    generator = torch.Generator(device=model.device).manual_seed(0)
    images, labels = [], []
    start = time.perf_counter()
    for first in range(0, n, batch):
        size = min(batch, n - first)
        y = (torch.arange(first, first + size) % model.num_classes) if model.num_classes else None  # every class in turn
        images.append(model.generate(size, labels=y, generator=generator, **options).cpu())
        labels.append(y if y is not None else torch.zeros(size, dtype=torch.long))
    synchronize(model.device)
    seconds = time.perf_counter() - start
    uint8 = ((torch.cat(images) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # (n, C, H, W)
    return uint8, torch.cat(labels), seconds


def score(network, real: ImageData, real_features, uint8: torch.Tensor, labels: torch.Tensor, conditional: bool,
          protocol: dict) -> tuple[dict, object]:
    fake = ImageData(uint8, labels)
    batches = lambda: (fake.batch(torch.arange(i, min(i + 500, len(fake))))["image"] for i in range(0, len(fake), 500))  # noqa: E731
    ctx = EvalContext(network, real, {"dataset": "fashion-mnist", "split": "test", "source": real.source}, len(real),
                      batches, len(fake), seed=0, protocol=protocol, use_cache=False, real_features=real_features)
    metrics = ["kid", "pr"] + (["fid"] if len(fake) > network.feature_dim else [])
    row = {s.name.replace("-fmnist", ""): s.value for s in compute(ctx, metrics)}
    if conditional:  # share of samples classified as the class asked for
        row["label_accuracy"] = (ctx.fake.logits.argmax(1) == labels).float().mean().item()
    return row, ctx.real


def figure(rows: list[tuple[str, torch.Tensor]], path: Path, columns: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    width = columns * 0.55
    fig, axes = plt.subplots(len(rows), 1, figsize=(width + 1.2, len(rows) * 0.6 + 0.1), squeeze=False)
    fig.subplots_adjust(left=1.1 / (width + 1.2), right=0.99, top=0.99, bottom=0.01, hspace=0.08)
    for axis, (title, images) in zip(axes[:, 0], rows):
        images = images[:columns]
        blank = torch.full((columns - len(images), *images.shape[1:]), 255, dtype=torch.uint8)  # a short row stays left
        grid = make_grid(torch.cat([images, blank]), nrow=columns, padding=1, pad_value=255)  # (3, h, w) uint8
        axis.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
        axis.set_xticks([]), axis.set_yticks([])
        axis.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
        for spine in axis.spines.values():
            spine.set_visible(False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def quality(args: argparse.Namespace) -> None:
    if args.quick:
        args.steps, args.samples, args.ddpm_samples = 30, 130, 8
        args.ddim_steps, args.guidance_scales, args.guidance_steps = "10,25", "0,1,3", 10
    out = args.out / "diffusion_quality"
    network = load_features("fmnist")
    real = build_dataset(DataConfig(name="fashion-mnist", split="test"))
    real_features, rows, pictures = None, [], {"steps": [], "guidance": []}
    budget = {"steps": args.steps, "batch": args.batch, "width": args.width, "blocks": args.blocks, "lr": args.lr,
              "ema": args.ema}

    start = time.perf_counter()
    run = train_preset("ddpm", args, out)
    train_seconds = time.perf_counter() - start
    model = genzoo.load(run)
    settings = [("ddim", int(s), args.samples) for s in args.ddim_steps.split(",")] + [("ddpm", 1000, args.ddpm_samples)]
    for sampler, steps, n in settings:
        uint8, labels, seconds = timed_samples(model, n, args.sample_batch, sampler=sampler, steps=steps)
        protocol = {"ema": True, "sampler": sampler, "sampling_steps": steps, "eta": 0.0 if sampler == "ddim" else None}
        row, real_features = score(network, real, real_features, uint8, labels, False, protocol)
        rows.append({"model": "ddpm", "sampler": sampler, "sampling_steps": steps, "guidance": None, "n": n,
                     "samples_per_s": n / seconds, "train_seconds": train_seconds, **row})
        pictures["steps"].append((f"{sampler.upper()} {steps}", uint8))
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)

    start = time.perf_counter()
    run = train_preset("ddpm-cfg", args, out)
    train_seconds = time.perf_counter() - start
    model = genzoo.load(run)
    for scale in (float(s) for s in args.guidance_scales.split(",")):
        uint8, labels, seconds = timed_samples(model, args.samples, args.sample_batch, sampler="ddim",
                                               steps=args.guidance_steps, guidance=scale)
        protocol = {"ema": True, "sampler": "ddim", "sampling_steps": args.guidance_steps, "guidance": scale}
        row, real_features = score(network, real, real_features, uint8, labels, True, protocol)
        rows.append({"model": "ddpm-cfg", "sampler": "ddim", "sampling_steps": args.guidance_steps, "guidance": scale,
                     "n": args.samples, "samples_per_s": args.samples / seconds, "train_seconds": train_seconds, **row})
        pictures["guidance"].append((f"guidance {scale:g}", uint8))
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)

    columns = ["fid", "kid", "precision", "recall", "label_accuracy", "samples_per_s"]
    print(f"\n{'model':<10}{'sampler':<12}{'guidance':>9}{'n':>7}" + "".join(f"{c:>15}" for c in columns))
    for row in rows:
        guidance = "-" if row["guidance"] is None else f"{row['guidance']:g}"
        print(f"{row['model']:<10}{row['sampler'] + ' ' + str(row['sampling_steps']):<12}{guidance:>9}{row['n']:>7}"
              + "".join(f"{row[c]:>15.4f}" if c in row else f"{'-':>15}" for c in columns))
    device = device_name(torch.device("cpu"))
    print(f"budget: {args.steps} steps of batch {args.batch}, width {args.width}, {args.blocks} block(s) per level, "
          f"lr {args.lr}, EMA {args.ema}, on {device}; EMA samples vs the 10,000 test images, fmnist features")
    figures = args.figures if not args.quick else out  # a smoke run leaves the docs' figures alone
    figure(pictures["steps"], figures / "diffusion_steps.png", columns=12)
    figure(pictures["guidance"], figures / "diffusion_guidance.png", columns=12)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("diffusion_quality-quick.json" if args.quick else "diffusion_quality.json")
    path.write_text(json.dumps({"device": device, "torch": torch.__version__, "genzoo": genzoo.__version__,
                                "budget": budget, "rows": rows}, indent=2) + "\n")
    print(f"wrote {path}, {figures / 'diffusion_steps.png'}, {figures / 'diffusion_guidance.png'}")


# ----------------------------------------------------------------------------- speed against diffusers


CIFAR = {"width": 128, "channel_multipliers": [1, 2, 2, 2], "blocks_per_level": 2, "attention_resolutions": [16],
         "dropout": 0.0, "timesteps": 1000, "schedule": "linear", "prediction": "eps"}
SMOKE = {**CIFAR, "width": 32, "channel_multipliers": [1, 2], "blocks_per_level": 1}  # --smoke: same code, seconds on a CPU


def genzoo_cifar_model(device: torch.device, unet: dict = CIFAR):
    from genzoo.models.base import DataInfo
    from genzoo.registry import MODELS

    config = build_config({"family": "ddpm", "model": unet}).model
    model = MODELS.get("ddpm")(config, DataInfo(channels=3, image_size=32))
    return model.to(device, memory_format=torch.channels_last if device.type == "cuda" else torch.contiguous_format)


def diffusers_cifar_unet(device: torch.device, channels_last: bool, unet: dict = CIFAR):
    """diffusers.UNet2DModel of the same configuration: attention blocks at the levels whose resolution is listed."""
    from diffusers import UNet2DModel

    resolutions = [32 // 2**level for level in range(len(unet["channel_multipliers"]))]  # 32, 16, 8, 4 for CIFAR
    attention = set(unet["attention_resolutions"])
    model = UNet2DModel(sample_size=32, in_channels=3, out_channels=3,
                        block_out_channels=tuple(unet["width"] * m for m in unet["channel_multipliers"]),
                        layers_per_block=unet["blocks_per_level"], attention_head_dim=None, norm_eps=1e-6,
                        downsample_padding=0, flip_sin_to_cos=False, freq_shift=1,
                        down_block_types=tuple("AttnDownBlock2D" if r in attention else "DownBlock2D" for r in resolutions),
                        up_block_types=tuple("AttnUpBlock2D" if r in attention else "UpBlock2D" for r in reversed(resolutions)))
    return model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def images_per_second(step, batch: int, warmup: int, iterations: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    synchronize(device)
    return batch * iterations / (time.perf_counter() - start)


def speed(args: argparse.Namespace) -> None:
    from diffusers import DDIMScheduler, DDPMScheduler

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but no CUDA GPU is visible; use --device auto or cpu.")
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    on_gpu = device.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # "fp32" on CUDA means tf32 matmuls
    batch, iterations, warmup = args.batch or (128 if on_gpu else 4), args.iterations or (30 if on_gpu else 2), 5 if on_gpu else 1
    num_samples = args.samples or (1000 if on_gpu else 2)
    x0 = torch.rand(batch, 3, 32, 32, device=device) * 2 - 1  # synthetic data already on the device
    results: dict[str, dict[str, float]] = {}

    # genzoo: the family's forward and generate, as the trainer and `genzoo sample` run them
    unet_config = SMOKE if args.smoke else CIFAR
    model = genzoo_cifar_model(device, unet_config)
    if args.compile:
        model.denoiser = torch.compile(model.denoiser)
    parameters = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4, fused=on_gpu)
    batch_dict = {"image": x0.contiguous(memory_format=torch.channels_last) if on_gpu else x0}

    def genzoo_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_gpu):
            loss = model("main", batch_dict)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    name = "genzoo (" + ("bf16 + channels_last + fused AdamW" if on_gpu else "fp32") + (" + compile)" if args.compile else ")")
    print(f"{name}: training, batch {batch}", flush=True)  # progress lines: a log cut short says where it stopped
    results[name] = {"train_images_per_s": images_per_second(genzoo_step, batch, warmup, iterations, device)}
    model.eval()
    print(f"{name}: DDIM-50, {num_samples} samples", flush=True)
    # warm-up with the timed batch and sampler, so that eval mode and the batch size are compiled (and tuned) here
    model.generate(num_samples, sampler="ddim", steps=2)
    synchronize(device)
    start = time.perf_counter()
    model.generate(num_samples, sampler="ddim", steps=50, generator=torch.Generator(device).manual_seed(0))
    synchronize(device)
    results[name]["ddim50_samples_per_s"] = num_samples / (time.perf_counter() - start)
    del model, optimizer

    # diffusers: UNet2DModel with its DDPMScheduler (noising) and DDIMScheduler (sampling)
    variants = [("diffusers (fp32/tf32)" if on_gpu else "diffusers (fp32)", False)]
    if on_gpu:
        variants.append(("diffusers (bf16 + channels_last + fused AdamW)", True))
    noising = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    diffusers_parameters = None
    for variant, fast in variants:
        print(f"{variant}: training, batch {batch}", flush=True)
        unet = diffusers_cifar_unet(device, channels_last=fast, unet=unet_config)
        diffusers_parameters = sum(p.numel() for p in unet.parameters())
        optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-4, fused=fast)
        images = x0.contiguous(memory_format=torch.channels_last) if fast else x0

        def diffusers_step() -> None:
            noise = torch.randn_like(images)
            t = torch.randint(0, 1000, (batch,), device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
                prediction = unet(noising.add_noise(images, noise, t), t).sample
            loss = torch.nn.functional.mse_loss(prediction.float(), noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        results[variant] = {"train_images_per_s": images_per_second(diffusers_step, batch, warmup, iterations, device)}
        unet.eval()
        print(f"{variant}: DDIM-50, {num_samples} samples", flush=True)
        sampler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", timestep_spacing="linspace")
        sampler.set_timesteps(50)
        synchronize(device)
        start = time.perf_counter()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            x = torch.randn(num_samples, 3, 32, 32, device=device, generator=torch.Generator(device).manual_seed(0))
            if fast:
                x = x.contiguous(memory_format=torch.channels_last)
            for t in sampler.timesteps:
                x = sampler.step(unet(x, t).sample, t, x).prev_sample
        synchronize(device)
        results[variant]["ddim50_samples_per_s"] = num_samples / (time.perf_counter() - start)
        del unet, optimizer

    baseline = results[variants[0][0]]
    print(f"DDPM CIFAR-10 U-Net{' (--smoke: narrowed)' if args.smoke else ''}: genzoo {parameters:,} parameters, "
          f"diffusers {diffusers_parameters:,}; on {device.type} ({device_name(device)}), torch {torch.__version__}")
    print(f"training batch {batch} x {iterations} iterations; DDIM 50 steps on {num_samples} samples")
    print(f"{'implementation':<52}{'train img/s':>13}{'x plain':>9}{'DDIM-50 samples/s':>19}{'x plain':>9}")
    for variant, row in results.items():
        print(f"{variant:<52}{row['train_images_per_s']:>13.2f}{row['train_images_per_s'] / baseline['train_images_per_s']:>9.2f}"
              f"{row['ddim50_samples_per_s']:>19.3f}{row['ddim50_samples_per_s'] / baseline['ddim50_samples_per_s']:>9.2f}")
    path = args.json or RESULTS / f"diffusion_speed-{device.type}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    import diffusers

    path.write_text(json.dumps({"device": device_name(device), "torch": torch.__version__, "diffusers": diffusers.__version__,
                                "parameters": {"genzoo": parameters, "diffusers": diffusers_parameters}, "batch": batch,
                                "iterations": iterations, "ddim_samples": num_samples, "compile": args.compile,
                                "unet": unet_config, "smoke": args.smoke,
                                "results": results}, indent=2) + "\n")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    q = commands.add_parser("quality", help="FID/KID/PR against sampling steps and guidance on Fashion-MNIST")
    q.add_argument("--quick", action="store_true", help="a 2-minute smoke run: 30 steps, 130 samples, fewer settings")
    q.add_argument("--steps", type=int, default=400, help="training steps of each model")
    q.add_argument("--batch", type=int, default=64)
    q.add_argument("--width", type=int, default=16, help="U-Net base width (the presets have 64)")
    q.add_argument("--blocks", type=int, default=1, help="residual blocks per level (the presets have 2)")
    q.add_argument("--lr", type=float, default=1e-3)
    q.add_argument("--ema", type=float, default=0.99, help="EMA decay (0.999 needs a longer budget)")
    q.add_argument("--samples", type=int, default=200, help="samples per DDIM and guidance setting (FID needs >= 129)")
    q.add_argument("--ddpm-samples", type=int, default=50, help="samples for DDPM with 1,000 steps (the slow row)")
    q.add_argument("--ddim-steps", default="10,25,50,100")
    q.add_argument("--guidance-scales", default="0,1,3,5")
    q.add_argument("--guidance-steps", type=int, default=25, help="DDIM steps of the guidance rows")
    q.add_argument("--sample-batch", type=int, default=250)
    q.add_argument("--out", type=Path, default=RESULTS, help="folder for the two training runs")
    q.add_argument("--figures", type=Path, default=Path("docs"))
    s = commands.add_parser("speed", help="genzoo's U-Net against diffusers.UNet2DModel, DDPM CIFAR-10 configuration")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    s.add_argument("--batch", type=int, default=None, help="training batch [128 on CUDA, 4 on CPU]")
    s.add_argument("--iterations", type=int, default=None, help="timed training steps [30 on CUDA, 2 on CPU]")
    s.add_argument("--samples", type=int, default=None, help="DDIM-50 samples [1000 on CUDA, 2 on CPU]")
    s.add_argument("--compile", action="store_true", help="torch.compile genzoo's U-Net")
    s.add_argument("--smoke", action="store_true", help="narrow both U-Nets alike (a check of the code; figures mean nothing)")
    s.add_argument("--json", type=Path, default=None, help="output file [benchmarks/results/diffusion_speed-<device>.json]")
    args = parser.parse_args()
    quality(args) if args.command == "quality" else speed(args)


if __name__ == "__main__":
    main()

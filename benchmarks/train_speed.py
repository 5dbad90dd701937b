"""Training speed of genzoo's DCGAN at 64x64x3 against a plain eager PyTorch loop, in one process.

What is measured: images per second of full training steps (a discriminator update on a real and a
fake batch, then a generator update), after warm-up steps that are not timed. The clock reads
`time.perf_counter()` around the timed steps, with `torch.cuda.synchronize()` before and after on
CUDA, so ms/step is wall time per step and images/s is batch / (ms/step / 1000). The variants take
turns in rounds of a few steps each and the fastest round of each variant is reported (all rounds
go to the JSON), so that other load on a shared machine distorts the ratios as little as possible.

Variants, each on synthetic images already on the device:
- eager: the pytorch/examples DCGAN loop written the common way, here in plain PyTorch: G
  ConvTranspose 100->512->256->128->64->3 with BatchNorm + ReLU and Tanh out, D its mirror with
  LeakyReLU(0.2) and BatchNorm except on the first layer, a final conv to 1 + Sigmoid, BCELoss,
  Adam(2e-4, betas=(0.5, 0.999)), fp32, `.item()` on the losses every step.
- genzoo: the `dcgan` preset built from its public pieces (`load_config` + `Trainer`) with
  data.name=fake at 64x64x3 and the same widths (64/64, latent 100), timed through repeated
  `Trainer.train_step(sums)`; the summed losses are read once at the end of the timed region, as
  `Trainer.fit` reads them every log_every steps. Mixed precision is genzoo's default ("auto": bf16
  autocast on CUDA, fp32 on CPU); on CUDA also with train.mixed_precision=no. The preset keeps
  its generator EMA (decay 0.999), updated every step. Labels read "genzoo (<mixed_precision>, <dtype>)".

Run: python benchmarks/train_speed.py [--device auto|cpu|cuda] [--batches 64,512] [--steps N] [--rounds N]
The table is printed and a JSON file is written (default benchmarks/results/train_speed-<device>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from genzoo.config import load_config
from genzoo.train.trainer import Trainer

LATENT, WIDTH, SIZE, CHANNELS = 100, 64, 64, 3
TARGET_RATIO_64, TARGET_IMAGES_512 = 5.0, 60_000  # BENCHMARKS.md, one H100
RESULTS = Path(__file__).resolve().parent / "results"
Runner = tuple[Callable[[], None], Callable[[], None]]  # (one training step, read the accumulated losses)


# ----------------------------------------------------------------------------- the eager baseline


def eager_generator() -> nn.Module:
    def up(c_in: int, c_out: int, stride: int, padding: int) -> list[nn.Module]:
        return [nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]

    return nn.Sequential(
        *up(LATENT, WIDTH * 8, 1, 0), *up(WIDTH * 8, WIDTH * 4, 2, 1),  # 1 -> 4 -> 8
        *up(WIDTH * 4, WIDTH * 2, 2, 1), *up(WIDTH * 2, WIDTH, 2, 1),  # -> 16 -> 32
        nn.ConvTranspose2d(WIDTH, CHANNELS, 4, 2, 1, bias=False), nn.Tanh(),  # -> 64
    )


def eager_discriminator() -> nn.Module:
    def down(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]

    return nn.Sequential(
        nn.Conv2d(CHANNELS, WIDTH, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),  # 64 -> 32
        *down(WIDTH, WIDTH * 2), *down(WIDTH * 2, WIDTH * 4), *down(WIDTH * 4, WIDTH * 8),  # -> 16 -> 8 -> 4
        nn.Conv2d(WIDTH * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),  # -> 1
    )


def init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def eager_runner(batch: int, device: torch.device) -> Runner:
    """(step, read) for the common eager loop; `read` has nothing to do, every step syncs."""
    generator, discriminator = eager_generator().to(device), eager_discriminator().to(device)
    for network in (generator, discriminator):
        network.apply(init_weights)
    criterion = nn.BCELoss()
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    dataset = torch.rand(4 * batch, CHANNELS, SIZE, SIZE, device=device) * 2 - 1  # synthetic, on the device
    position, history = 0, []

    def step() -> None:
        nonlocal position
        real = dataset[position : position + batch]
        position = (position + batch) % len(dataset)
        # discriminator: maximise log D(x) + log(1 - D(G(z)))
        discriminator.zero_grad()
        label = torch.full((batch,), 1.0, device=device)
        loss_d_real = criterion(discriminator(real).view(-1), label)
        loss_d_real.backward()
        noise = torch.randn(batch, LATENT, 1, 1, device=device)
        fake = generator(noise)
        label.fill_(0.0)
        loss_d_fake = criterion(discriminator(fake.detach()).view(-1), label)
        loss_d_fake.backward()
        optimizer_d.step()
        # generator: maximise log D(G(z))
        generator.zero_grad()
        label.fill_(1.0)
        loss_g = criterion(discriminator(fake).view(-1), label)
        loss_g.backward()
        optimizer_g.step()
        history.append(((loss_d_real + loss_d_fake).item(), loss_g.item()))  # the usual per-step logging

    return step, lambda: None


# ----------------------------------------------------------------------------- genzoo


def genzoo_runner(batch: int, device: torch.device, mixed_precision: str, workdir: Path) -> Runner:
    """(step, read) through genzoo's Trainer; `read` is the one host sync, as in `Trainer.fit`."""
    config = load_config("dcgan", [
        "data.name=fake", f"data.image_size={SIZE}", f"data.channels={CHANNELS}", f"data.max_images={4 * batch}",
        f"train.batch_size={batch}", f"train.device={device.type}", f"train.mixed_precision={mixed_precision}",
        f"model.latent_dim={LATENT}", f"model.generator_width={WIDTH}", f"model.discriminator_width={WIDTH}",
    ])
    trainer = Trainer(config, out=workdir / f"genzoo-{batch}-{mixed_precision}", progress=False)
    sums: dict[str, torch.Tensor] = {}

    def step() -> None:
        trainer.train_step(sums)

    def read() -> None:
        if sums:
            torch.stack(list(sums.values())).cpu()
            sums.clear()

    return step, read


# ----------------------------------------------------------------------------- timing and output


def time_rounds(runners: dict[str, Runner], steps: int, warmup: int, rounds: int, device: torch.device) -> dict:
    """Seconds per step of each variant in each round. The variants take turns round by round, so
    load from other processes (a shared CPU) falls on all of them alike."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for step, read in runners.values():
        for _ in range(warmup):
            step()
        read()
    sync()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, (step, read) in runners.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            read()
            sync()
            times[name].append((time.perf_counter() - start) / steps)
    return times


def default_schedule(device: torch.device, batch: int) -> tuple[int, int, int]:
    """(steps per round, rounds, warm-up steps): stable on CUDA, about two quiet minutes on 2 CPU cores."""
    if device.type == "cuda":
        return 50, 5, 20
    return max(1, 128 // batch), 3 if batch <= 128 else 2, 1


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Training images/s of genzoo's DCGAN (64x64x3) against the plain eager pytorch/examples loop, "
        "in one process on synthetic data already on the device. Variants take turns in rounds; the fastest "
        "round of each is reported. Prints a table and writes JSON.",
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="default auto: cuda when available")
    parser.add_argument("--batches", default="64,512", help="comma-separated batch sizes (default: 64,512)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per round (default: 50 on CUDA; max(1, 128 // batch) on CPU)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed rounds per variant (default: 5 on CUDA; on CPU 3, or 2 above batch 128)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps per variant (default: 20 on CUDA, 1 on CPU)")
    parser.add_argument("--json", type=Path, default=None,
                        help="output file (default: benchmarks/results/train_speed-<device>.json)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda but no CUDA GPU is visible; use --device auto or cpu.")
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if cuda else "cpu")
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    auto_variant = f"genzoo (auto, {'bf16' if cuda else 'fp32'})"  # genzoo (train.mixed_precision, dtype)
    console = Console()
    console.print(f"device: {device.type} ({device_name(device)}), torch {torch.__version__}, "
                  f"{os.cpu_count()} CPUs, {torch.get_num_threads()} threads")

    measurements, settings = [], {}
    with tempfile.TemporaryDirectory(prefix="genzoo-train-speed-") as workdir:
        for batch in batches:
            steps, rounds, warmup = default_schedule(device, batch)
            steps, rounds = args.steps or steps, args.rounds or rounds
            warmup = warmup if args.warmup is None else args.warmup
            settings[str(batch)] = {"steps_per_round": steps, "rounds": rounds, "warmup": warmup}
            console.print(f"batch {batch}: {warmup} warm-up step(s), then {rounds} round(s) of {steps} timed step(s) "
                          "per variant, variants taking turns; the fastest round is reported")
            torch.manual_seed(0)
            runners = {"eager (pytorch/examples)": eager_runner(batch, device),
                       auto_variant: genzoo_runner(batch, device, "auto", Path(workdir))}
            if cuda:
                runners["genzoo (no, fp32)"] = genzoo_runner(batch, device, "no", Path(workdir))
            for variant, seconds in time_rounds(runners, steps, warmup, rounds, device).items():
                best = min(seconds)
                measurements.append({"batch": batch, "variant": variant, "ms_per_step": 1000 * best,
                                     "images_per_s": batch / best, "round_ms": [1000 * s for s in seconds]})

    baseline = {m["batch"]: m["images_per_s"] for m in measurements if m["variant"].startswith("eager")}
    table = Table(title=f"DCGAN 64x64x3 training speed, {device_name(device)}")
    for column in ("device", "batch", "variant", "ms/step", "images/s", "vs eager"):
        table.add_column(column, justify="left" if column in ("device", "variant") else "right")
    for m in measurements:
        m["ratio_vs_eager"] = m["images_per_s"] / baseline[m["batch"]]
        table.add_row(device.type, str(m["batch"]), m["variant"], f"{m['ms_per_step']:,.1f}",
                      f"{m['images_per_s']:,.0f}", f"{m['ratio_vs_eager']:.2f}x")
    console.print(table)

    console.print(f"H100 targets (BENCHMARKS.md): genzoo >= {TARGET_RATIO_64:g}x the eager loop at batch 64 and "
                  f">= {TARGET_IMAGES_512:,} images/s at batch 512. They apply to a CUDA device (they were set on "
                  f"an H100); this one is {'CUDA: ' + device_name(device) if cuda else 'not, so they do not apply'}.")
    for m in [m for m in measurements if cuda and m["variant"] == auto_variant and m["batch"] in (64, 512)]:
        value, goal, unit = ((m["ratio_vs_eager"], TARGET_RATIO_64, "x eager") if m["batch"] == 64
                             else (m["images_per_s"], TARGET_IMAGES_512, " images/s"))
        console.print(f"  batch {m['batch']}: {value:,.2f}{unit} (target {goal:,}{unit}): "
                      f"{'met' if value >= goal else 'not met'}")

    path = args.json or RESULTS / f"train_speed-{device.type}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "benchmark": "train_speed", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "torch": torch.__version__,
        "device": device.type, "device_name": device_name(device), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "settings": {"image_size": SIZE, "channels": CHANNELS, "latent_dim": LATENT, "width": WIDTH,
                     "genzoo_preset": "dcgan", "reported": "fastest round", "batches": settings},
        "targets_h100": {"ratio_vs_eager_at_64": TARGET_RATIO_64, "images_per_s_at_512": TARGET_IMAGES_512,
                         "apply": cuda},
        "measurements": measurements,
    }, indent=2) + "\n")
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()

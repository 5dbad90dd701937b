"""Image-to-image translation on Fashion-MNIST under one CPU budget: what the papers' ablations claim.

Three tables, every run trained on the Fashion-MNIST train split and measured on the test split with
genzoo's metrics (`fmnist` features; FID of translations against the real images of the target domain):

1. pix2pix (Isola et al. 2017, Table 1): edges -> image (`edges2fashion`) with L1 alone, cGAN alone,
   L1 + cGAN, and L1 + an unconditional D ("GAN + L1"), same networks, steps and batch; FID-FMNIST, L1,
   PSNR and SSIM of translate(edges) against each test image; plus super-resolution x4 (`data.task=superres`)
   with L1 + cGAN against its bicubic input. Rows "no translation" score the input itself.
2. CycleGAN (Zhu et al. 2017, Table 4 and Sec. 5.2): Sneaker <-> Ankle boot with and without the
   cycle loss and the identity loss: FID both ways, cycle error, and the share of translations the
   `fmnist` classifier puts in the target class; "no translation" scores the input itself.
3. StarGAN (Choi et al. 2018, Table 3) against CycleGAN pairs for Sandal, Sneaker, Ankle boot: one
   StarGAN against three CycleGANs (one per pair), the same generator steps; FID and target-class
   accuracy averaged over the 6 directions, and parameter counts.
Writes JSON, prints the tables and writes pictures (docs/translation_*.png with --pictures docs).

    nice python benchmarks/translation.py                 # the CPU budget: about 35 CPU-minutes
    python benchmarks/translation.py --quick              # a smoke run, a few minutes
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import torch

import genzoo
from genzoo.api import make_trainer
from genzoo.config import DataConfig, build_config
from genzoo.data import build_dataset
from genzoo.metrics.evaluate import evaluate

PIX2PIX = {  # name -> model settings (Isola et al. 2017, Table 1)
    "L1": {"adversarial_weight": 0.0},
    "cGAN": {"l1_weight": 0.0},
    "L1 + cGAN": {},
    "L1 + GAN (unconditional D)": {"conditional_discriminator": False},
}
CYCLEGAN = {  # name -> model settings (Zhu et al. 2017, Table 4; Sec. 5.2)
    "CycleGAN (cycle + identity)": {},
    "no identity loss": {"identity_weight": 0.0},
    "no cycle loss (GAN alone)": {"cycle_weight": 0.0, "identity_weight": 0.0},
}
THREE = ("Sandal", "Sneaker", "Ankle boot")


class Direction:
    """A translation model seen as 'translate a -> b' for one direction: to="b" goes to `target`, to="a" back to `source`."""

    def __init__(self, model: Any, source: Any, target: Any) -> None:
        self.model, self.source, self.target, self.uses_ema = model, source, target, getattr(model, "uses_ema", False)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @torch.no_grad()
    def translate(self, x: torch.Tensor, to: Any = "b") -> torch.Tensor:
        return self.model.translate(x, to=self.target if to in ("b", 1) else self.source)


class NoTranslation:
    """The input itself: the baseline of every table (for super-resolution, the bicubic input)."""

    uses_ema, device = False, torch.device("cpu")

    @torch.no_grad()
    def translate(self, x: torch.Tensor, to: Any = "b") -> torch.Tensor:
        return x


def train(family: str, model: dict, data: dict, args: argparse.Namespace, run: Path, steps: int, batch: int,
          lr: float = 2e-4) -> tuple[Any, float]:
    config = build_config({"family": family, "model": model, "data": {"name": "fashion-mnist", **data},
                           "train": {"steps": steps, "batch_size": batch, "lr": lr, "betas": [0.5, 0.999],
                                     "log_every": 50, "sample_every": steps, "checkpoint_every": steps, "seed": args.seed}})
    shutil.rmtree(run, ignore_errors=True)
    trainer = make_trainer(config, run, progress=False)
    start = time.process_time()
    trainer.fit()
    return genzoo.load(run), time.process_time() - start


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def scores(model: Any, metrics: list[str], data: DataConfig, n: int) -> dict[str, float]:
    return {s.name: s.value for s in evaluate(model, metrics, data=data, num_samples=n)}


# ----------------------------------------------------------------------------- 1. pix2pix

def pix2pix_table(args: argparse.Namespace, pictures: dict) -> list[dict]:
    rows, test = [], DataConfig(name="edges2fashion", split="test")
    shown = build_dataset(test).batch(torch.arange(8))
    pictures["pix2pix"] = [("input (Canny edges)", shown["a"]), ("target", shown["b"])]
    rows.append({"task": "edges -> image", "model": "no translation (the edges)",
                 **scores(NoTranslation(), ["fid", "paired"], test, args.samples)})
    for name, settings in PIX2PIX.items():
        model, seconds = train("pix2pix", {"width": args.width, "discriminator_width": args.width, **settings},
                               {"name": "edges2fashion"}, args, args.out / f"pix2pix-{_slug(name)}", args.pix2pix_steps, args.batch)
        rows.append({"task": "edges -> image", "model": name, "train_cpu_s": seconds,
                     **scores(model, ["fid", "paired"], test, args.samples)})
        pictures["pix2pix"].append((name, model.translate(shown["a"])))
        print(rows[-1], flush=True)
    superres = DataConfig(name="fashion-mnist", split="test", task="superres")
    rows.append({"task": "super-resolution x4", "model": "no translation (bicubic)",
                 **scores(NoTranslation(), ["fid", "paired"], superres, args.samples)})
    model, seconds = train("pix2pix", {"width": args.width, "discriminator_width": args.width}, {"task": "superres"},
                           args, args.out / "pix2pix-superres", args.pix2pix_steps, args.batch)
    rows.append({"task": "super-resolution x4", "model": "L1 + cGAN", "train_cpu_s": seconds,
                 **scores(model, ["fid", "paired"], superres, args.samples)})
    low = build_dataset(superres).batch(torch.arange(8))
    pictures["superres"] = [("input (x4 bicubic)", low["a"]), ("pix2pix L1 + cGAN", model.translate(low["a"])),
                            ("target", low["b"])]
    print(rows[-1], flush=True)
    return rows


# ----------------------------------------------------------------------------- 2. CycleGAN

def cyclegan_model(args: argparse.Namespace, settings: dict | None = None) -> dict:
    return {"width": args.cycle_width, "discriminator_width": args.width, "blocks": args.blocks, **(settings or {})}


def both_ways(model: Any, a: str, b: str, n: int) -> dict[str, float]:
    """FID, target-class accuracy and cycle error of a -> b and b -> a on the test split."""
    row = {}
    for source, target, key_s, key_t in ((a, b, "a", "b"), (b, a, "b", "a")):
        got = scores(Direction(model, key_s, key_t), ["fid", "domain-accuracy", "cycle"],
                     DataConfig(name="fashion-mnist", split="test", domains=(source, target)), n)
        row[f"fid {source} -> {target}"] = got["fid-fmnist"]
        row[f"accuracy {source} -> {target}"] = got["domain-accuracy-fmnist-b"]
        row[f"cycle {source}"] = got["cycle-l1-a"]
    return row


def cyclegan_table(args: argparse.Namespace, pictures: dict) -> tuple[list[dict], Any]:
    a, b = "Sneaker", "Ankle boot"
    data = {"domains": [a, b]}
    shown = build_dataset(DataConfig(name="fashion-mnist", split="test", domains=(a, b))).batch(torch.arange(8))
    rows = [{"model": "no translation (the input)", **both_ways(NoTranslation(), a, b, args.samples)}]
    pictures["cyclegan"] = [("sneakers (a)", shown["a"]), ("ankle boots (b)", shown["b"])]
    full = None
    for name, settings in CYCLEGAN.items():
        model, seconds = train("cyclegan", cyclegan_model(args, settings), data, args, args.out / f"cyclegan-{_slug(name)}",
                               args.cycle_steps, args.cycle_batch)
        rows.append({"model": name, "train_cpu_s": seconds, **both_ways(model, a, b, args.samples)})
        fake_b, fake_a = model.translate(shown["a"], to="b"), model.translate(shown["b"], to="a")
        pictures["cyclegan"] += [(f"{name}: a -> b", fake_b), (f"{name}: a -> b -> a", model.translate(fake_b, to="a")),
                                 (f"{name}: b -> a", fake_a)]
        full = full or model
        print(rows[-1], flush=True)
    return rows, full


# ----------------------------------------------------------------------------- 3. StarGAN against CycleGAN pairs

def stargan_table(args: argparse.Namespace, pictures: dict, sneaker_boot: Any, sneaker_boot_seconds: float) -> list[dict]:
    directions = [(s, t) for s in THREE for t in THREE if s != t]
    shown = build_dataset(DataConfig(name="fashion-mnist", split="test", classes=THREE))
    shown = shown.batch(torch.cat([(shown.labels == k).nonzero().flatten()[:3] for k in range(3)]))
    star, star_seconds = train("stargan", {"width": args.cycle_width, "discriminator_width": args.width, "blocks": args.blocks},
                               {"classes": list(THREE)}, args, args.out / "stargan", args.cycle_steps, args.cycle_batch, lr=1e-4)
    pairs, pair_seconds = {("Sneaker", "Ankle boot"): sneaker_boot}, sneaker_boot_seconds  # table 2 trained this one
    for a, b in (("Sandal", "Sneaker"), ("Sandal", "Ankle boot")):
        pairs[(a, b)], seconds = train("cyclegan", cyclegan_model(args), {"domains": [a, b]}, args,
                                       args.out / f"cyclegan-{_slug(a)}-{_slug(b)}", args.cycle_steps, args.cycle_batch)
        pair_seconds += seconds
    rows = []
    for name, translator in (("StarGAN (one generator)", None), ("CycleGAN, one per pair", pairs)):
        fids, accuracies = [], []
        for source, target in directions:
            if translator is None:
                model = Direction(star, THREE.index(source), THREE.index(target))
            else:
                (a, b), model = next(((a, b), m) for (a, b), m in translator.items() if {a, b} == {source, target})
                model = Direction(model, "a" if source == a else "b", "b" if source == a else "a")
            got = scores(model, ["fid", "domain-accuracy"],
                         DataConfig(name="fashion-mnist", split="test", domains=(source, target)), args.samples)
            fids.append(got["fid-fmnist"])
            accuracies.append(got["domain-accuracy-fmnist-b"])
        if translator is None:
            generators, total, models = parameters(star.generator), parameters(star), 1
        else:
            generators = sum(parameters(m.generator_ab) + parameters(m.generator_ba) for m in pairs.values())
            total, models = sum(parameters(m) for m in pairs.values()), len(pairs)
        rows.append({"model": name, "models": models, "generator_parameters": generators, "parameters": total,
                     "fid_mean": sum(fids) / len(fids), "accuracy_mean": sum(accuracies) / len(accuracies),
                     "fid_per_direction": dict(zip([f"{s} -> {t}" for s, t in directions], fids)),
                     "accuracy_per_direction": dict(zip([f"{s} -> {t}" for s, t in directions], accuracies)),
                     "train_cpu_s": star_seconds if translator is None else pair_seconds})
        print(rows[-1], flush=True)
    pictures["stargan"] = [("input", shown["image"])] + [
        (f"StarGAN -> {name}", star.translate(shown["image"], to=k)) for k, name in enumerate(THREE)]
    return rows


# ----------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default="pix2pix,cyclegan,stargan")
    parser.add_argument("--pix2pix-steps", type=int, default=1000)
    parser.add_argument("--cycle-steps", type=int, default=800)
    parser.add_argument("--batch", type=int, default=32, help="pix2pix batch")
    parser.add_argument("--cycle-batch", type=int, default=8, help="CycleGAN and StarGAN batch")
    parser.add_argument("--width", type=int, default=32, help="U-Net and discriminator width")
    parser.add_argument("--cycle-width", type=int, default=16, help="ResNet generator width (CycleGAN, StarGAN)")
    parser.add_argument("--blocks", type=int, default=4, help="residual blocks of the ResNet generators")
    parser.add_argument("--samples", type=int, default=1000, help="translations scored per direction (at most the test images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke budget: 30 steps, widths 8, 200 samples")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/translation"))
    parser.add_argument("--pictures", type=Path, default=None, help="also copy the pictures to this folder (e.g. docs)")
    args = parser.parse_args()
    if args.quick:
        args.pix2pix_steps = args.cycle_steps = 30
        args.width, args.cycle_width, args.blocks, args.samples = 8, 8, 1, 200
    tables = args.tables.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    pictures: dict[str, list] = {}
    result: dict[str, Any] = {
        "benchmark": "translation", "device": "cpu", "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "extractor": "fmnist",
        "settings": {k: str(v) for k, v in vars(args).items()}}
    start = time.process_time()
    if "pix2pix" in tables:
        result["pix2pix"] = pix2pix_table(args, pictures)
    sneaker_boot = None
    if "cyclegan" in tables or "stargan" in tables:
        result["cyclegan"], sneaker_boot = cyclegan_table(args, pictures)
    if "stargan" in tables:
        result["stargan"] = stargan_table(args, pictures, sneaker_boot, result["cyclegan"][1]["train_cpu_s"])
    result["cpu_seconds"] = time.process_time() - start
    (args.out / "translation.json").write_text(json.dumps(result, indent=2) + "\n")
    print_tables(result)
    for name, rows in pictures.items():
        path = args.out / f"translation_{name}.png"
        _picture(rows, path)
        if args.pictures is not None:
            shutil.copy(path, args.pictures / path.name)
    print(f"wrote {args.out / 'translation.json'} and {len(pictures)} pictures; {result['cpu_seconds'] / 60:.1f} CPU-minutes")


def print_tables(result: dict) -> None:
    if "pix2pix" in result:
        print("\n| task | model | FID-FMNIST | L1 | PSNR (dB) | SSIM | train CPU s |\n|---|---|---|---|---|---|---|")
        for r in result["pix2pix"]:
            print(f"| {r['task']} | {r['model']} | {r['fid-fmnist']:.1f} | {r['l1']:.4f} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
                  f"{r.get('train_cpu_s', 0):.0f} |")
    if "cyclegan" in result:
        a, b = "Sneaker", "Ankle boot"
        print(f"\n| model | FID {a} -> {b} | FID {b} -> {a} | accuracy -> {b} | accuracy -> {a} | cycle error {a} | "
              f"cycle error {b} | train CPU s |\n|---|---|---|---|---|---|---|---|")
        for r in result["cyclegan"]:
            print(f"| {r['model']} | {r[f'fid {a} -> {b}']:.1f} | {r[f'fid {b} -> {a}']:.1f} | {r[f'accuracy {a} -> {b}']:.3f} | "
                  f"{r[f'accuracy {b} -> {a}']:.3f} | {r[f'cycle {a}']:.4f} | {r[f'cycle {b}']:.4f} | {r.get('train_cpu_s', 0):.0f} |")
    if "stargan" in result:
        print("\n| model | models | generator parameters | all parameters | mean FID (6 directions) | mean target-class "
              "accuracy | train CPU s |\n|---|---|---|---|---|---|---|")
        for r in result["stargan"]:
            print(f"| {r['model']} | {r['models']} | {r['generator_parameters']:,} | {r['parameters']:,} | {r['fid_mean']:.1f} | "
                  f"{r['accuracy_mean']:.3f} | {r['train_cpu_s']:.0f} |")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def _picture(rows: list[tuple[str, torch.Tensor]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    figure, axes = plt.subplots(len(rows), 1, figsize=(5.5, 0.62 * len(rows) + 0.2))
    for axis, (name, images) in zip(axes, rows):
        grid = make_grid(images.detach().float().clamp(-1, 1), nrow=len(images), normalize=True, value_range=(-1, 1), padding=1)
        axis.imshow(grid.permute(1, 2, 0).numpy())
        axis.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=120, bbox_inches="tight")  # long row names stay whole
    plt.close(figure)


if __name__ == "__main__":
    main()

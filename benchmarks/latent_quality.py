"""Latent-variable models on Fashion-MNIST under one fixed budget: what reconstructs, what samples.

Every model (the autoencoder with each loss, GLO, the VAE with beta = 1 and 4, the conditional VAE)
is trained for `--steps` steps of batch `--batch` on the first `--images` images of the Fashion-MNIST
train split (Adam, lr 1e-3, betas (0.9, 0.999), no EMA), then measured on the test split:
- reconstruction MSE (images in [0, 1]) and PSNR of `--recon` test images (GLO encodes them by
  optimisation: its `encode_steps` Adam steps from `encode_restarts` random codes each);
- FID-FMNIST, precision and recall (k = 3) of `--samples` samples against the 10,000 test images.
  The autoencoder has no prior: its "samples" decode random codes drawn from a diagonal Gaussian
  fitted to the codes of its training images (the best one can do without a VAE's KL term), and,
  in a column of their own, codes drawn from N(0, I) as a VAE draws them. GLO
  samples from the full-covariance Gaussian fitted to its learned codes; VAEs from N(0, I); the
  conditional VAE cycles through the 10 classes;
- training time per step (wall clock, this machine).
Prints a table, writes JSON and a picture: one row per model, 8 test images reconstructed, then 8
samples (docs/latent_quality.png with --picture).

    python benchmarks/latent_quality.py                  # CPU budget, about 15 minutes on 2 cores
    python benchmarks/latent_quality.py --quick          # a smoke run, about 2 minutes
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
from genzoo.config import DataConfig, build_config
from genzoo.data import build_dataset
from genzoo.metrics.evaluate import evaluate
from genzoo.api import make_trainer

MODELS = {  # name -> (family, model settings)
    "autoencoder (mse)": ("autoencoder", {"loss": "mse"}),
    "autoencoder (mae)": ("autoencoder", {"loss": "mae"}),
    "autoencoder (mse + perceptual)": ("autoencoder", {"loss": {"mse": 1.0, "perceptual": 0.05}}),
    "glo": ("glo", {}),
    "vae (beta 1)": ("vae", {"beta": 1.0}),
    "vae (beta 4)": ("vae", {"beta": 4.0}),
    "conditional vae": ("vae", {"conditional": True}),
}


class RandomCodes:
    """An autoencoder's decoder fed random codes: from a diagonal Gaussian fitted to its training codes,
    or (codes=None) from N(0, I), as a VAE would draw them."""

    def __init__(self, model, codes: torch.Tensor | None) -> None:  # noqa: ANN001
        self.model, self.uses_ema = model, False
        dim = model.encoder(torch.zeros(1, model.info.channels, model.info.image_size, model.info.image_size)).shape[1]
        self.mean = codes.mean(0) if codes is not None else torch.zeros(dim)
        self.std = codes.std(0) if codes is not None else torch.ones(dim)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @torch.no_grad()
    def generate(self, n: int, labels=None, generator: torch.Generator | None = None) -> torch.Tensor:  # noqa: ANN001
        z = self.mean + self.std * torch.randn(n, len(self.mean), generator=generator)  # (n, D)
        return self.model.decoder(z)  # (n, C, H, W)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help="comma list of: " + ", ".join(MODELS))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--images", type=int, default=20_000, help="training images (GLO learns a code for each)")
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--recon", type=int, default=200, help="test images to reconstruct")
    parser.add_argument("--quick", action="store_true", help="smoke budget: 150 steps, 1000 samples, 100 reconstructions")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/latent_quality"))
    parser.add_argument("--picture", type=Path, default=None, help="also write the picture here (e.g. docs/latent_quality.png)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.samples, args.recon = 150, 1000, 100
    test = build_dataset(DataConfig(name="fashion-mnist", split="test"))
    shown = test.batch(torch.arange(8))  # the same 8 test images for every model's row
    rows, pictures = [], []
    for name in args.models.split(","):
        family, settings = MODELS[name]
        config = build_config({
            "family": family, "model": {"latent_dim": args.latent, **settings},
            "data": {"name": "fashion-mnist", "max_images": args.images},
            "train": {"steps": args.steps, "batch_size": args.batch, "lr": 1e-3, "betas": [0.9, 0.999],
                      "log_every": 50, "sample_every": args.steps, "checkpoint_every": args.steps},
        })
        run = args.out / name.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "plus")
        shutil.rmtree(run, ignore_errors=True)
        start = time.perf_counter()
        trainer = make_trainer(config, run, progress=False)
        setup = time.perf_counter() - start
        trainer.fit()
        train_seconds = time.perf_counter() - start - setup
        model = genzoo.load(run)
        sampler, prior_scores = model, {}
        if not hasattr(model, "generate"):
            train_images = trainer.data.batch(torch.arange(min(len(trainer.data), 10_000)))["image"]
            sampler = RandomCodes(model, torch.cat([model.encode(chunk) for chunk in train_images.split(1000)]))
            naive = evaluate(RandomCodes(model, None), ["fid", "pr"], data=DataConfig(name="fashion-mnist", split="test"),
                             num_samples=args.samples, num_real=10_000)
            prior_scores = {f"{s.name} (N(0, I) codes)": s.value for s in naive}
        start = time.perf_counter()
        recon = evaluate(run, ["recon"], split="test", num_real=args.recon, num_samples=args.recon)
        recon_seconds = time.perf_counter() - start
        quality = evaluate(sampler, ["fid", "pr"], data=DataConfig(name="fashion-mnist", split="test"),
                           num_samples=args.samples, num_real=10_000)
        row = {"model": name, "family": family, "settings": settings, "seconds_per_step": train_seconds / args.steps,
               "recon_seconds": recon_seconds, **{s.name: s.value for s in recon + quality}, **prior_scores,
               "sampler": "diagonal Gaussian fitted to training codes" if sampler is not model else "the model's own"}
        rows.append(row)
        print(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)), flush=True)
        labels = {"labels": shown["label"]} if getattr(model, "conditional", False) else {}
        reconstructions = model.reconstruct(shown["image"], **labels)  # (8, 1, 28, 28)
        samples = sampler.generate(8, generator=torch.Generator().manual_seed(0))  # (8, 1, 28, 28)
        pictures.append((name, torch.cat([reconstructions, samples])))

    _print_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "latent_quality", "device": "cpu", "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "steps": args.steps, "batch": args.batch, "train_images": args.images,
              "latent_dim": args.latent, "samples": args.samples, "reconstructed": args.recon,
              "extractor": "fmnist", "reference": "fashion-mnist test split (10,000)", "rows": rows}
    (args.out / "latent_quality.json").write_text(json.dumps(result, indent=2) + "\n")
    _picture(shown["image"], pictures, args.out / "latent_quality.png")
    if args.picture is not None:
        shutil.copy(args.out / "latent_quality.png", args.picture)
    print(f"wrote {args.out / 'latent_quality.json'} and {args.out / 'latent_quality.png'}")


def _print_table(rows: list[dict]) -> None:
    header = "| model | recon MSE | PSNR (dB) | FID-FMNIST | precision | recall | FID, N(0, I) codes | ms / step |"
    print("\n" + header + "\n|" + "---|" * 8)
    for r in rows:
        naive = r.get("fid-fmnist (N(0, I) codes)")
        print(f"| {r['model']} | {r['mse']:.4f} | {r['psnr']:.1f} | {r['fid-fmnist']:.1f} | {r['precision-fmnist']:.3f} | "
              f"{r['recall-fmnist']:.3f} | {'–' if naive is None else f'{naive:.1f}'} | {1000 * r['seconds_per_step']:.0f} |")


def _picture(inputs: torch.Tensor, pictures: list[tuple[str, torch.Tensor]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    figure, axes = plt.subplots(len(pictures) + 1, 1, figsize=(9, 0.75 * (len(pictures) + 1) + 0.4))
    rows = [("test images", torch.cat([inputs, torch.full_like(inputs, -1)]))] + pictures
    for axis, (name, images) in zip(axes, rows):
        grid = make_grid(images.clamp(-1, 1), nrow=16, normalize=True, value_range=(-1, 1), padding=1)
        axis.imshow(grid.permute(1, 2, 0).numpy())
        axis.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0].set_title("left: the 8 test images reconstructed; right: 8 samples", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()

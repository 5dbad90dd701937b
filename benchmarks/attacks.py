"""Robustness on Fashion-MNIST: a plainly trained and a PGD-trained classifier under FGSM and PGD.

Two `classifier` runs of the same network (the `classifier` and `classifier-pgd` presets: width 32,
Adam 1e-3, batch 128 on the 60,000 training images; `--steps` steps for the first, and
`--adversarial-steps` for the second, trained with PGD-3 at eps = 0.1 inside every step, Madry et
al. 2018, each step costing about 5 plain ones), then the accuracy of `--images` test images (a
fixed random choice) under FGSM and PGD-40 (L-inf, step 2.5 eps / 40, random start, the strongest
iterate kept) at eps in {0, 0.05, 0.1, 0.2, 0.3} ([0, 1] pixel units), and PGD-40 with `--restarts`
random starts at eps = 0.1. Madry et al.'s figures for their adversarially trained MNIST model at
eps = 0.3 (MadryLab/mnist_challenge leaderboard) are printed beside as the anchor: other data
(MNIST is easier than Fashion-MNIST), another network (theirs is larger) and another training eps.

Prints a table, writes benchmarks/results/attacks.json and docs/attacks.png (`--picture`).

    nice python benchmarks/attacks.py                 # about 20 minutes on 2 shared CPU cores
    python benchmarks/attacks.py --quick              # a smoke run
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import genzoo
from genzoo.api import train as train_run
from genzoo.attacks import attack
from genzoo.config import DataConfig
from genzoo.data import build_dataset

EPS = (0.0, 0.05, 0.1, 0.2, 0.3)
MADRY_MNIST = {"FGSM": 0.964, "PGD-100": 0.925, "PGD, 50 restarts": 0.896, "AutoAttack": 0.885}  # eps = 0.3


def accuracy(model, images, labels, method, eps, steps, restarts, batch, seed) -> float:  # noqa: ANN001
    generator = torch.Generator().manual_seed(seed)
    right = 0
    for i in range(0, len(images), batch):
        x, y = images[i : i + batch], labels[i : i + batch]
        x_adv = x if eps == 0 else attack(model.logits, x, y, method, eps, steps=steps, restarts=restarts,
                                          generator=generator, module=model)
        right += (model.predict(x_adv).argmax(1) == y).sum().item()
    return right / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--adversarial-steps", type=int, default=1000, help="training steps of the PGD-trained model")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--pgd-steps", type=int, default=40)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--runs", default="benchmarks/runs/attacks")
    parser.add_argument("--out", default="benchmarks/results/attacks.json")
    parser.add_argument("--picture", default="docs/attacks.png")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.adversarial_steps, args.images, args.pgd_steps, args.restarts = 30, 30, 100, 5, 2
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)  # one thread per process: on a shared 2-core machine more threads spin
    test = build_dataset(DataConfig(name="fashion-mnist", split="test"))
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[: args.images]
    batch = test.batch(order)
    images, labels = batch["image"], batch["label"]
    rows, runs = [], {}
    for name, preset, steps in (("standard", "classifier", args.steps),
                                ("PGD-trained (eps 0.1, PGD-3)", "classifier-pgd", args.adversarial_steps)):
        run = Path(args.runs) / preset
        if not (run / "model.safetensors").exists():  # an earlier run of the benchmark is reused
            train_run(preset, run, steps=steps, overrides={"train.log_every": 100, "train.sample_every": 10**6})
        times = [json.loads(line)["time"] for line in (run / "log.jsonl").read_text().splitlines()]
        train_seconds = times[-1] - times[0]  # first to last logged step (wall clock, shared machine)
        model = genzoo.load(run).requires_grad_(False)
        runs[name] = model
        row = {"model": name, "preset": preset, "train_steps": steps, "train_seconds": round(train_seconds, 1),
               "train_accuracy_last_log": json.loads((run / "log.jsonl").read_text().splitlines()[-1]).get("main/accuracy")}
        for eps in EPS:
            row[f"fgsm@{eps}"] = accuracy(model, images, labels, "fgsm", eps, 1, 1, 500, 0)
            row[f"pgd{args.pgd_steps}@{eps}"] = accuracy(model, images, labels, "pgd", eps, args.pgd_steps, 1, 500, 0)
        row[f"pgd{args.pgd_steps}x{args.restarts}@0.1"] = accuracy(model, images, labels, "pgd", 0.1, args.pgd_steps,
                                                                  args.restarts, 500, 0)
        rows.append(row)
        print(json.dumps(row), flush=True)
    header = ["model", "attack"] + [f"eps {e}" for e in EPS]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        for attack_name, key in (("FGSM", "fgsm"), (f"PGD-{args.pgd_steps}", f"pgd{args.pgd_steps}")):
            print(f"| {row['model']} | {attack_name} | " + " | ".join(f"{100 * row[f'{key}@{e}']:.1f}%" for e in EPS) + " |")
        print(f"| {row['model']} | PGD-{args.pgd_steps}, {args.restarts} restarts | – | – | "
              f"{100 * row[f'pgd{args.pgd_steps}x{args.restarts}@0.1']:.1f}% | – | – |")
    print("| Madry et al., MNIST, trained at eps 0.3 (anchor) | " +
          ", ".join(f"{k} {100 * v:.1f}%" for k, v in MADRY_MNIST.items()) + " at eps 0.3 |")
    result = {"rows": rows, "eps": EPS, "images": args.images, "anchor_madry_mnist_eps_0.3": MADRY_MNIST,
              "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, CPU",
              "torch": torch.__version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.picture:
        picture(runs, images, labels, args, rows)
    print(f"wrote {args.out}")


def picture(runs, images, labels, args, rows) -> None:  # noqa: ANN001
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genzoo.data.fashion_mnist import CLASSES

    count = 6
    figure = plt.figure(figsize=(12, 4.2))
    grid = figure.add_gridspec(3, count * 2 + 4)
    curve = figure.add_subplot(grid[:, count * 2 + 1 :])
    for row, (name, model) in zip(rows, runs.items()):
        for key, style in ((f"fgsm", "--"), (f"pgd{args.pgd_steps}", "-")):
            curve.plot(EPS, [row[f"{key}@{e}"] for e in EPS], style, marker="o", label=f"{name.split(' (')[0]}, {key.upper()}")
    curve.set_xlabel("eps (L-inf, [0, 1] pixel units)")
    curve.set_ylabel("test accuracy")
    curve.grid(alpha=0.3)
    curve.legend(fontsize=7)
    for m, (name, model) in enumerate(runs.items()):
        x, y = images[:count], labels[:count]
        x_adv = attack(model.logits, x, y, "pgd", 0.1, steps=args.pgd_steps, generator=torch.Generator().manual_seed(0),
                       module=model)
        predicted = model.predict(x_adv).argmax(1)
        for i in range(count):
            for r, (picture_, title) in enumerate(((x[i], CLASSES[y[i]] if m == 0 else ""),
                                                   (x_adv[i], f"→ {CLASSES[predicted[i]]}"))):
                if m == 0 and r == 0 or r == 1:
                    axis = figure.add_subplot(grid[0 if r == 0 else 1 + m, i * 2 : i * 2 + 2])
                    axis.imshow(((picture_[0] + 1) / 2).numpy(), cmap="gray", vmin=0, vmax=1)
                    axis.set_title(title, fontsize=7, color="crimson" if r == 1 and predicted[i] != y[i] else "black")
                    axis.axis("off")
        figure.text(0.01, 0.62 - 0.3 * m, name.split(" (")[0] + ",\nPGD-40 eps 0.1", fontsize=7, rotation=90)
    Path(args.picture).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.picture, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()

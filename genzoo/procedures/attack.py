"""Attack: adversarial examples against a trained classifier, and its accuracy as the radius grows.

The target is genzoo's shipped Fashion-MNIST network (`fmnist`, the feature network of the metrics,
92.97% test accuracy) or any `classifier` run. On `num_images` images of the test split it runs
FGSM, BIM or PGD (`genzoo.attacks`: L-inf or L2, untargeted or towards one class; eps in [0, 1]
pixel units) and reports the accuracy before and after, the accuracy at every radius of `curve`
(plot and JSON), and a grid of originals, perturbations (amplified) and adversarial images with the
labels the network gives them. The adversarial images are saved in `adversarial.safetensors`.

    genzoo attack fmnist --method pgd --eps 0.1
    genzoo attack runs/classifier --method fgsm --norm l2 --eps 1.0 --targeted Sneaker
    genzoo run attack target=runs/classifier method=bim eps=0.05 curve=[0,0.01,0.02,0.05]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt

from genzoo.errors import GenzooError
from genzoo.procedures.base import Procedure, ProcedureConfig, ProcedureContext, free_folder
from genzoo.registry import PROCEDURES

SHIPPED = "fmnist"


class AttackConfig(ProcedureConfig):
    target: str = SHIPPED  # "fmnist" (the shipped Fashion-MNIST network) or a classifier run folder
    method: Literal["fgsm", "bim", "pgd"] = "pgd"
    norm: Literal["linf", "l2"] = "linf"
    eps: PositiveFloat = 0.1  # radius in [0, 1] pixel units (L-inf: per pixel; L2: of the whole image)
    steps: PositiveInt = 40  # iterations of bim and pgd
    step_size: PositiveFloat | None = None  # alpha in pixel units; None: 2.5 eps / steps (Madry et al.)
    restarts: PositiveInt = 1  # pgd: random starts, the strongest kept per image
    targeted: int | str | None = None  # a class (index or name) to push every image into; None: any wrong class
    curve: tuple[NonNegativeFloat, ...] | None = None  # radii of the accuracy curve; None: 0, eps/2, eps, 2 eps
    num_images: PositiveInt = 500  # the first images of a fixed random order of the split
    data: str | None = None  # dataset name; None: the run's own dataset (fashion-mnist for fmnist)
    split: Literal["train", "test", "all"] = "test"
    batch_size: PositiveInt = 500
    ema: bool | None = None  # a run's EMA weights (None: when it has them)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0


class Target:
    """A classifier to attack: differentiable logits, its module (in eval mode), classes, the data it reads."""

    def __init__(self, config: AttackConfig, device: torch.device) -> None:
        from genzoo.config import DataConfig, build_config

        if config.target == SHIPPED:
            from genzoo.data.fashion_mnist import CLASSES
            from genzoo.metrics.features import load_features

            features = load_features(SHIPPED)
            self.module = features.network.to(device).eval().requires_grad_(False)
            self.logits = lambda x: self.module(x)["logits"]  # (B, 1, 28, 28) in [-1, 1] -> (B, 10)
            self.names, self.shape = CLASSES, (1, 28, 28)
            self.description = f"fmnist (genzoo's Fashion-MNIST network, sha256 {features.weights_sha256[:12]})"
            self.data = DataConfig(name=config.data or "fashion-mnist", split=config.split)
            return
        from genzoo.loading import load
        from genzoo.train.checkpoint import RunFolder

        model = load(config.target, ema=config.ema, device=device)
        if not callable(getattr(model, "logits", None)):
            raise GenzooError(f"{config.target} is a {type(model).__name__} run, which does not classify; give a "
                              f"classifier run (genzoo train classifier) or target=fmnist.")
        self.module = model.requires_grad_(False)
        self.logits = model.logits
        info = model.info
        self.names = tuple(info.class_names) if info.class_names else tuple(str(i) for i in range(model.num_classes))
        self.shape = (info.channels, info.image_size, info.image_size)
        self.description = f"classifier run {config.target}"
        run_data = build_config(RunFolder(config.target).read_config()).data
        self.data = run_data.model_copy(update={"split": config.split, "max_images": None,
                                                **({"name": config.data} if config.data else {})})


@PROCEDURES.register("attack")
class Attack(Procedure):
    Config = AttackConfig

    def __init__(self, config: AttackConfig) -> None:
        super().__init__(config)
        from genzoo.data import build_dataset
        from genzoo.latent import resolve_class

        self.device = torch.device("cuda" if config.device == "auto" and torch.cuda.is_available() else
                                   "cpu" if config.device == "auto" else config.device)
        self.target = Target(config, self.device)
        data = build_dataset(self.target.data)
        if "label" not in data.keys:
            raise GenzooError(f"the {self.target.data.name} data has no labels, so accuracy cannot be measured; "
                              "give a labelled dataset (data=...).")
        count = min(config.num_images, len(data))
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(config.seed))[:count]
        batch = data.batch(order)
        self.images, self.labels = batch["image"], batch["label"]  # (N, C, H, W) in [-1, 1], (N,)
        if tuple(self.images.shape[1:]) != self.target.shape:
            raise GenzooError(f"the images are {tuple(self.images.shape[1:])} but the classifier reads "
                              f"{self.target.shape}; give data of that size.")
        self.goal = None if config.targeted is None else resolve_class(config.targeted, self.target.names)
        self.curve = config.curve if config.curve is not None else tuple(config.eps * f for f in (0, 0.5, 1, 2))

    def _attack(self, images: torch.Tensor, labels: torch.Tensor, eps: float, generator: torch.Generator,
                on_step=None) -> torch.Tensor:  # noqa: ANN001
        from genzoo.attacks import attack

        config = self.config
        target = None if self.goal is None else torch.full_like(labels, self.goal)
        if eps == 0:
            return images
        return attack(self.target.logits, images, labels, config.method, eps, norm=config.norm, steps=config.steps,
                      step_size=config.step_size, restarts=config.restarts, target=target, generator=generator,
                      module=self.target.module, on_step=on_step)

    def run(self, context: ProcedureContext) -> None:
        from rich.progress import Progress
        from safetensors.torch import save_file

        config, device = self.config, self.device
        batches = [(self.images[i : i + config.batch_size].to(device), self.labels[i : i + config.batch_size].to(device))
                   for i in range(0, len(self.images), config.batch_size)]
        steps = 1 if config.method == "fgsm" else config.steps
        loss_sum = torch.zeros(steps, device=device)  # per step, summed over images: read once at the end
        correct_sum = torch.zeros(steps, device=device)

        def on_step(step: int, loss: torch.Tensor, logits: torch.Tensor) -> None:
            loss_sum[step] += loss.sum()
            correct_sum[step] += (logits.argmax(1) == labels).sum()

        adversarial, predictions, clean = [], [], []
        curve: dict[float, dict[str, float]] = {}
        with Progress(disable=not context.progress, transient=True) as progress:
            again = [eps for eps in self.curve if eps != config.eps]  # the attack at eps itself is not run twice
            task = progress.add_task(f"{config.method} attack", total=len(batches) * (1 + len(again)))
            generator = torch.Generator(device=device).manual_seed(config.seed)
            for images, labels in batches:
                x_adv = self._attack(images, labels, config.eps, generator, on_step)
                with torch.no_grad():
                    clean.append(self.target.logits(images).argmax(1).cpu())
                    predictions.append(self.target.logits(x_adv).argmax(1).cpu())
                adversarial.append(x_adv.cpu())
                progress.advance(task)
            for eps in again:
                generator = torch.Generator(device=device).manual_seed(config.seed)
                hits = right = 0
                for images, labels in batches:
                    with torch.no_grad():
                        predicted = self.target.logits(self._attack(images, labels, eps, generator)).argmax(1)
                    right += (predicted == labels).sum().item()
                    hits += 0 if self.goal is None else (predicted == self.goal).sum().item()
                    progress.advance(task)
                curve[eps] = {"accuracy": right / len(self.images),
                              **({"target_rate": hits / len(self.images)} if self.goal is not None else {})}
        n = len(self.images)
        if config.eps in self.curve:
            predicted = torch.cat(predictions)
            curve[config.eps] = {"accuracy": (predicted == self.labels).float().mean().item(),
                                 **({"target_rate": (predicted == self.goal).float().mean().item()} if self.goal is not None else {})}
        curve = dict(sorted(curve.items()))
        for step, (loss, right) in enumerate(zip((loss_sum / n).tolist(), (correct_sum / n).tolist()), start=1):
            context.record(step, **{"attack/loss": loss, "attack/accuracy": right})
        adversarial, predictions, clean = torch.cat(adversarial), torch.cat(predictions), torch.cat(clean)
        delta = (adversarial - self.images) / 2  # in [0, 1] pixel units
        save_file({"images": adversarial.contiguous(), "labels": self.labels.contiguous(),
                   "predictions": predictions.contiguous()}, str(context.folder.path / "adversarial.safetensors"))
        curve_rows = [{"eps": eps, **values} for eps, values in curve.items()]
        from genzoo.io import atomic_write_text

        atomic_write_text(context.folder.path / "curve.json", json.dumps(curve_rows, indent=2) + "\n")
        context.figure("examples", self._examples_figure(clean, predictions, delta, adversarial),
                       "originals (true / predicted label), perturbations (amplified), adversarial images (predicted label)")
        context.figure("accuracy_vs_eps", self._curve_figure(curve_rows), f"accuracy of {n} images against the radius")
        result: dict[str, Any] = {
            "target": self.target.description, "method": config.method, "norm": config.norm, "eps": config.eps,
            "eps_units": "[0, 1] pixel range", "images": n,
            "accuracy_before": (clean == self.labels).float().mean().item(),
            "accuracy_after": (predictions == self.labels).float().mean().item(),
        }
        if self.goal is not None:
            result.update(targeted=self.target.names[self.goal], target_rate=(predictions == self.goal).float().mean().item())
        result.update(linf_max=delta.abs().flatten(1).max(1).values.max().item(),
                      l2_mean=delta.flatten(1).norm(dim=1).mean().item(),
                      curve="curve.json", adversarial_images="adversarial.safetensors")
        context.result(**result)

    def _examples_figure(self, clean, predictions, delta, adversarial):  # noqa: ANN001, ANN202
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        count = min(8, len(self.images))
        figure, axes = plt.subplots(3, count, figsize=(1.4 * count, 4.6), squeeze=False)
        names = self.target.names
        scale = delta[:count].abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)  # (n, 1, 1, 1)
        rows = (self.images[:count], delta[:count] / scale, adversarial[:count])
        for column in range(count):
            truth, before, after = names[self.labels[column]], names[clean[column]], names[predictions[column]]
            titles = (f"{truth}\n→ {before}", f"×{1 / scale[column].item():.0f}", f"→ {after}")
            for row, (images, title) in enumerate(zip(rows, titles)):
                picture = ((images[column] + 1) / 2).clamp(0, 1).permute(1, 2, 0).squeeze(-1).numpy()
                axis = axes[row][column]
                axis.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
                axis.set_title(title, fontsize=7, color="crimson" if row == 2 and after != truth else "black")
                axis.axis("off")
        figure.tight_layout()
        return figure

    def _curve_figure(self, rows: list[dict]):  # noqa: ANN202
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(4.6, 3.2))
        axis.plot([r["eps"] for r in rows], [r["accuracy"] for r in rows], "o-", label="accuracy")
        if self.goal is not None:
            axis.plot([r["eps"] for r in rows], [r["target_rate"] for r in rows], "s--",
                      label=f"classified as {self.target.names[self.goal]}")
        axis.set_xlabel(f"eps ({self.config.norm}, [0, 1] pixel units)")
        axis.set_ylim(-0.02, 1.02)
        axis.set_title(f"{self.config.method} against {self.target.description.split(' (')[0]}", fontsize=9)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        return figure


def attack(target: str = SHIPPED, out: str | Path | None = None, *, progress: bool = True, **settings: Any):
    """`genzoo attack` from Python: attack `target` (fmnist or a classifier run) into the run folder `out`
    (default runs/attack, or runs/attack-2, ...); settings are AttackConfig's keys. Returns the RunFolder."""
    from genzoo.procedures.base import run

    items = [f"target={target}"] + [f"{key}={json.dumps(value)}" for key, value in settings.items() if value is not None]
    return run("attack", items, out or free_folder(Path("runs") / "attack"), progress=progress)

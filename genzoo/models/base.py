"""What every family is: a `GenerativeModel` with phases, parameter groups and capabilities.

The trainer knows only this interface. A family declares:
- `Config`: its pydantic config (a `FamilyConfig`);
- `phases`: the optimisation phases of one training step, e.g. `(Phase("disc", repeats=k),
  Phase("gen"))`; each phase steps the optimizer of its parameter group;
- `param_groups()`: group name -> parameters (one optimizer each);
- `forward(phase, batch) -> dict[str, Tensor]` with a `"total"` key to minimise;
- `requires`: the batch keys it needs;
- `ema_modules`: the submodules whose weights get an exponential moving average;
- capabilities, only where true: `generate`, `reconstruct`, `encode`, `translate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from genzoo.config import FamilyConfig


@dataclass(frozen=True)
class Phase:
    """One optimisation phase: its name, the parameter group it steps, how often it runs."""

    name: str
    group: str | None = None  # parameter group it optimises; defaults to the phase name
    repeats: int = 1  # runs per training step, each on a fresh batch (e.g. k discriminator steps)
    every: int = 1  # run only on steps divisible by this (lazy regularisation)
    fresh_batch: bool = True  # False: reuse the last batch (a phase that needs only its size)

    @property
    def param_group(self) -> str:
        return self.group or self.name


@dataclass(frozen=True)
class DataInfo:
    """What a family needs to know about its data to build its networks."""

    channels: int
    image_size: int
    num_classes: int | None = None
    num_images: int | None = None  # size of the training set (GLO learns one code per image)


class GenerativeModel(nn.Module):
    """Base class of every family; see the module docstring for what a family declares."""

    Config: ClassVar[type[FamilyConfig]]
    requires: ClassVar[tuple[str, ...]] = ("image",)
    ema_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: FamilyConfig, info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.info = info

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("main"),)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"main": list(self.parameters())}

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def after_step(self, phase: str) -> None:
        """Called after each optimizer step of `phase` (e.g. weight clipping); nothing by default."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def class_labels(labels: Tensor | None, n: int, num_classes: int, device: torch.device) -> Tensor:
    """The labels of n samples of a class-conditional model: every class in turn when None, else
    checked to be n class indices in [0, num_classes). (n,) int64."""
    from genzoo.errors import GenzooError

    if labels is None:
        return torch.arange(n, device=device) % num_classes  # every class in turn
    labels = torch.as_tensor(labels, device=device).long().flatten()
    if len(labels) != n or labels.min() < 0 or labels.max() >= num_classes:
        raise GenzooError(f"labels must be {n} class indices in [0, {num_classes - 1}]; got "
                          f"{len(labels)} in [{int(labels.min())}, {int(labels.max())}].")
    return labels


# ----------------------------------------------------------------------------- capabilities

@runtime_checkable
class CanGenerate(Protocol):
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """(n, C, H, W) new images in [-1, 1]."""


@runtime_checkable
class CanReconstruct(Protocol):
    def reconstruct(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [-1, 1] -> its reconstruction, same shape and range."""


@runtime_checkable
class CanEncode(Protocol):
    def encode(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [-1, 1] -> (B, D) latent codes."""


@runtime_checkable
class CanTranslate(Protocol):
    def translate(self, x: Tensor, to: str = "b") -> Tensor:
        """(B, C, H, W) images of one domain in [-1, 1] -> the same images in domain `to`."""


CAPABILITIES: dict[str, type] = {"generate": CanGenerate, "reconstruct": CanReconstruct, "encode": CanEncode,
                                 "translate": CanTranslate}


def capabilities(model: nn.Module) -> list[str]:
    return [name for name, protocol in CAPABILITIES.items() if isinstance(model, protocol)]


@torch.no_grad()
def swap_rows(model: CanTranslate, a: Tensor, b: Tensor) -> Tensor:
    """Rows of (a, a -> b, b, b -> a) for k images of each domain, (k, C, H, W) each: (4k, C, H, W)."""
    return torch.stack([a, model.translate(a, to="b"), b, model.translate(b, to="a")], dim=1).flatten(0, 1)


@torch.no_grad()
def preview_images(model: nn.Module, batch: dict[str, Tensor], n: int, seed: int = 0) -> Tensor:
    """Images that show what a model does, for sample grids: new samples if it generates, swaps
    (a, a -> b, b, b -> a) if it translates two domains, else inputs beside their reconstructions.
    (n', C, H, W) in [-1, 1]."""
    was_training = model.training
    model.eval()
    try:
        if isinstance(model, CanGenerate):
            generator = torch.Generator(device=model.device).manual_seed(seed)
            return model.generate(n, generator=generator)  # conditional models cycle through the classes
        if isinstance(model, CanTranslate) and "a" in batch:
            k = max(1, n // 4)
            return swap_rows(model, batch["a"][:k], batch["b"][:k])
        if isinstance(model, CanReconstruct):
            x = batch["image"][: max(1, n // 2)]  # (b, C, H, W)
            pairs = torch.stack([x, model.reconstruct(x)], dim=1)  # (b, 2, C, H, W)
            return pairs.flatten(0, 1)  # (2b, C, H, W): input, reconstruction, input, ...
        raise TypeError(f"{type(model).__name__} neither generates nor reconstructs")
    finally:
        model.train(was_training)

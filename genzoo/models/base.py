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


CAPABILITIES: dict[str, type] = {"generate": CanGenerate, "reconstruct": CanReconstruct, "encode": CanEncode}


def capabilities(model: nn.Module) -> list[str]:
    return [name for name, protocol in CAPABILITIES.items() if isinstance(model, protocol)]


@torch.no_grad()
def preview_images(model: nn.Module, batch: dict[str, Tensor], n: int, seed: int = 0) -> Tensor:
    """Images that show what a model does, for sample grids: new samples if it generates,
    else inputs beside their reconstructions. (n', C, H, W) in [-1, 1]."""
    was_training = model.training
    model.eval()
    try:
        if isinstance(model, CanGenerate):
            generator = torch.Generator(device=model.device).manual_seed(seed)
            return model.generate(n, generator=generator)  # conditional models cycle through the classes
        if isinstance(model, CanReconstruct):
            x = batch["image"][: max(1, n // 2)]  # (b, C, H, W)
            pairs = torch.stack([x, model.reconstruct(x)], dim=1)  # (b, 2, C, H, W)
            return pairs.flatten(0, 1)  # (2b, C, H, W): input, reconstruction, input, ...
        raise TypeError(f"{type(model).__name__} neither generates nor reconstructs")
    finally:
        model.train(was_training)

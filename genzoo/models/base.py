"""What every family is: a `GenerativeModel` with phases, parameter groups, a schedule and capabilities.

The trainer knows only this interface. A family declares:
- `Config`: its pydantic config (a `FamilyConfig`);
- `modality`: what its samples are ("image", "text", "points", "label" for classifiers);
- `phases`: the optimisation phases of one training step, e.g. `(Phase("disc", repeats=k),
  Phase("gen"))`; each phase steps the optimizer of its parameter group, `repeats` times per step,
  only on steps divisible by `every` (lazy regularisation);
- `param_groups()`: group name -> parameters (one optimizer each); a group may also be a list of
  torch parameter-group dicts with an `lr_scale` (e.g. a mapping network at 0.01 x the rate);
- `group_settings()`: per-group optimizer settings (learning-rate scale, Adam betas), e.g. the lazy
  regularisation correction or two time-scale rates;
- `schedule(step, total)`: values derived from the step alone (learning-rate factors per group, a
  fade-in alpha, a gradient-reversal lambda), recomputed every step so rollback and resume stay exact;
- `forward(phase, batch) -> dict[str, Tensor]` with a `"total"` key to minimise;
- `requires`: the batch keys it needs; `conditional`, `num_classes`: whether it takes labels;
- `ema_modules`: the submodules whose weights get an exponential moving average;
- `preview(batch, n)`: what a sample grid shows (images, text, or nothing);
- capabilities, only where true: `generate`, `reconstruct`, `encode`, `translate`, `complete`,
  `predict`, `nll` (with a `likelihood` that states its units), `render` (an object or scene seen from
  given viewpoints);
- `pictures(data, generator)`: pictures of its own for the report, beside those chosen by capability.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, Protocol, Union, runtime_checkable

import torch
from torch import Tensor, nn

from genzoo.config import FamilyConfig
from genzoo.data.info import DataInfo
from genzoo.errors import GenzooError

__all__ = ["CAPABILITIES", "DataInfo", "GenerativeModel", "GroupSettings", "Likelihood", "Phase", "Picture", "Scheduled",
           "capabilities", "class_labels", "swap_rows"]

Preview = Union[Tensor, list[str], None]  # images (n, C, H, W) in [-1, 1], lines of text, or nothing to show


class Picture(NamedTuple):
    """One picture a family makes of itself for the report (`pictures(data, generator)`)."""

    name: str  # file name without extension, e.g. "rotation"
    caption: str
    images: Tensor  # (n, C, H, W) in [-1, 1], laid out as a grid
    columns: int


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
class GroupSettings:
    """Optimizer settings of one parameter group, relative to the run's `train` section."""

    lr_scale: float = 1.0  # the group's rate is train.lr (or train.group_lr[group]) times this
    betas: tuple[float, float] | None = None  # Adam betas; None: train.betas
    betas_power: float = 1.0  # Adam betas raised to this power (lazy regularisation: beta^c)


@dataclass(frozen=True)
class Scheduled:
    """What `schedule(step, total)` returns: learning-rate factors per group, and named values to log."""

    lr: Mapping[str, float] = field(default_factory=dict)  # group -> factor on its rate this step
    values: Mapping[str, float] = field(default_factory=dict)  # e.g. {"alpha": 0.3}; logged as schedule/<name>


@dataclass(frozen=True)
class Likelihood:
    """What `nll(batch)` returns: nats per item (B,), exactly or as an upper bound (a negative ELBO)."""

    exact: bool  # True: -log p(x); False: an upper bound on it
    item: str  # what one value is about: "image", "window"
    dims: int  # dimensions per item (C * H * W pixels, or tokens predicted per window)
    dim_name: str = "dim"  # "dim" (bits/dim) or "char" (bits/char)
    offset: float | None = 0.0  # nats per dimension to add before bits per dimension (dequantisation); None: not a density


class GenerativeModel(nn.Module):
    """Base class of every family; see the module docstring for what a family declares."""

    Config: ClassVar[type[FamilyConfig]]
    modality: ClassVar[str] = "image"
    phase_summary: ClassVar[str] = "main"  # the phases of one step, for `genzoo list`
    ema_modules: ClassVar[tuple[str, ...]] = ()
    requires: tuple[str, ...] = ("image",)  # may be narrowed per instance (e.g. labels when conditional)
    likelihood: Likelihood | None = None  # set by families with `nll`

    def __init__(self, config: FamilyConfig, info: DataInfo) -> None:
        super().__init__()
        self.config = config
        self.info = info
        self.conditional = False  # takes class labels (generate(labels=...), label batches)
        self.num_classes = 0  # classes of a conditional model or a classifier

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase("main"),)

    def param_groups(self) -> dict[str, list[Any]]:
        return {"main": list(self.parameters())}

    def group_settings(self) -> dict[str, GroupSettings]:
        return {}

    def schedule(self, step: int, total: int) -> Scheduled:
        """Values for the step after `step` steps of `total`; must depend on nothing else (no state)."""
        return Scheduled()

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def after_step(self, phase: str) -> None:
        """Called after each optimizer step of `phase` (e.g. weight clipping); nothing by default."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def preview(self, batch: dict[str, Tensor], n: int, seed: int = 0) -> Preview:
        """What the sample grids show: new samples if it generates, swaps (a, a -> b, b, b -> a) if it
        translates two domains, inputs beside reconstructions if it reconstructs, else nothing."""
        if callable(getattr(self, "generate", None)):
            generator = torch.Generator(device=self.device).manual_seed(seed)
            return self.generate(n, generator=generator)  # conditional models cycle through the classes
        if callable(getattr(self, "translate", None)) and "a" in batch:
            k = max(1, n // 4)
            return swap_rows(self, batch["a"][:k], batch["b"][:k])
        if callable(getattr(self, "reconstruct", None)) and "image" in batch:
            x = batch["image"][: max(1, n // 2)]  # (b, C, H, W)
            labels = {"labels": batch["label"][: len(x)]} if self.conditional else {}
            pairs = torch.stack([x, self.reconstruct(x, **labels)], dim=1)  # (b, 2, C, H, W)
            return pairs.flatten(0, 1)  # (2b, C, H, W): input, reconstruction, input, ...
        return None

    def domain_index(self, to: str | int) -> int:
        """The index (0 = a, 1 = b, ...) of a domain given by name, by its data name or by index."""
        names = [str(name).lower() for name in (self.info.domains or ())]
        letters = [chr(ord("a") + i) for i in range(max(len(names), 2))]
        if isinstance(to, int) and 0 <= to < len(letters):
            return to
        if str(to).lower() in letters:
            return letters.index(str(to).lower())
        if str(to).lower() in names:
            return names.index(str(to).lower())
        known = ", ".join(letters + [str(name) for name in (self.info.domains or ())])
        raise GenzooError(f"{to!r} is not a domain of this model; use one of: {known}.")


def class_labels(labels: Tensor | None, n: int, num_classes: int, device: torch.device) -> Tensor:
    """The labels of n samples of a class-conditional model: every class in turn when None, else
    checked to be n class indices in [0, num_classes). (n,) int64."""
    if labels is None:
        return torch.arange(n, device=device) % num_classes  # every class in turn
    labels = torch.as_tensor(labels, device=device).long().flatten()
    if len(labels) != n:
        raise GenzooError(f"{len(labels)} labels for {n} samples; give one label for all, or one per sample.")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise GenzooError(f"labels must be class indices in [0, {num_classes - 1}]; got values in "
                          f"[{int(labels.min())}, {int(labels.max())}].")
    return labels


# ----------------------------------------------------------------------------- capabilities

@runtime_checkable
class CanGenerate(Protocol):
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """(n, C, H, W) new images in [-1, 1] (or (n, L) tokens for text models)."""


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
    def translate(self, x: Tensor, to: str | int | Tensor = "b") -> Tensor:
        """(B, C, H, W) images in [-1, 1] -> the same images in domain `to` (a domain name, a class
        index or a (B,) label tensor)."""


@runtime_checkable
class CanComplete(Protocol):
    def complete(self, x: Tensor, mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x (B, ...) with mask (B, ...) true where x is known -> x with the rest sampled."""


@runtime_checkable
class CanPredict(Protocol):
    def predict(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [-1, 1] -> class logits (B, K)."""


@runtime_checkable
class CanNLL(Protocol):
    likelihood: Likelihood

    def nll(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """Negative log-likelihood (or its bound, see `likelihood`) in nats per item, (B,)."""


@runtime_checkable
class CanRender(Protocol):
    def render(self, azimuth: Tensor, elevation: Tensor) -> Tensor:
        """Views of the model's object or scene from cameras on an orbit, azimuth and elevation (B,) in
        radians (`genzoo.data.cameras`): (B, C, H, W) images in [-1, 1]."""


CAPABILITIES: dict[str, type] = {"generate": CanGenerate, "reconstruct": CanReconstruct, "encode": CanEncode,
                                 "translate": CanTranslate, "complete": CanComplete, "predict": CanPredict,
                                 "nll": CanNLL, "render": CanRender}


def capabilities(model: nn.Module | type) -> list[str]:
    """The capabilities a model (or a family's class) declares, in `CAPABILITIES` order."""
    return [name for name in CAPABILITIES if callable(getattr(model, name, None))]


@torch.no_grad()
def swap_rows(model: Any, a: Tensor, b: Tensor) -> Tensor:
    """Rows of (a, a -> b, b, b -> a) for k images of each domain, (k, C, H, W) each: (4k, C, H, W)."""
    return torch.stack([a, model.translate(a, to="b"), b, model.translate(b, to="a")], dim=1).flatten(0, 1)

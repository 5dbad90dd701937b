"""One optimizer per parameter group, and the learning rate of every group at every step.

A group's rate is recomputed before every step from what is configured, never scaled in place:

    lr(group) = (train.group_lr[group] or train.lr) * family scale * lr_scale of the torch group
                * train.rollback_lr_factor ** rollbacks * run_schedule(step) * family schedule(step)

so a rollback, a resume (also with another train.lr) and a scheduled run give the same rates as a run
straight through. The family's `group_settings()` may scale a group's rate and set its Adam betas
(e.g. StyleGAN2's lazy-regularisation correction, Karras et al. 2020, Appendix B).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from genzoo.config import TrainConfig
from genzoo.errors import ConfigError
from genzoo.models.base import GenerativeModel, GroupSettings, Scheduled

# name -> (torch parameter groups, lr, betas, weight decay, momentum, fused) -> optimizer
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": lambda groups, lr, betas, decay, momentum, fused: torch.optim.Adam(groups, lr=lr, betas=betas, weight_decay=decay, fused=fused),
    "adamw": lambda groups, lr, betas, decay, momentum, fused: torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=decay, fused=fused),
    "rmsprop": lambda groups, lr, betas, decay, momentum, fused: torch.optim.RMSprop(groups, lr=lr, weight_decay=decay, momentum=momentum),
    "sgd": lambda groups, lr, betas, decay, momentum, fused: torch.optim.SGD(groups, lr=lr, weight_decay=decay, momentum=momentum),
}


def run_schedule(kind: str, step: int, total: int, warmup: int) -> float:
    """The factor of every rate at the step after `step` of `total` (train.lr_schedule, train.warmup_steps):
    a linear warm-up min(1, (step + 1) / warmup) times a decay over the run, p = step / total:
    constant 1, linear 1 - p, cosine (1 + cos(pi p)) / 2 (Loshchilov & Hutter 2017, without restarts)."""
    ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
    progress = step / total
    decay = {"constant": 1.0, "linear": 1.0 - progress, "cosine": 0.5 * (1.0 + math.cos(math.pi * progress))}[kind]
    return ramp * decay


class Optimizers:
    """The optimizers of a model's parameter groups, by group name."""

    def __init__(self, model: GenerativeModel, train: TrainConfig, fused: bool) -> None:
        groups, settings = model.param_groups(), model.group_settings()
        unknown = sorted(set(train.group_lr) - set(groups))
        if unknown:
            raise ConfigError(f"train.group_lr names {', '.join(map(repr, unknown))}, not a parameter group of this "
                              f"model; its groups are: {', '.join(groups)}.")
        self.params: dict[str, list[nn.Parameter]] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.base_lr: dict[str, float] = {}
        self.lr_scales: dict[str, list[float]] = {}  # of each torch group, as the family declares them
        for name, entries in groups.items():
            torch_groups = [dict(g) for g in entries] if entries and isinstance(entries[0], dict) else [{"params": list(entries)}]
            for group in torch_groups:
                group["params"] = list(group["params"])
                group.setdefault("lr_scale", 1.0)
            setting = settings.get(name, GroupSettings())
            self.base_lr[name] = train.group_lr.get(name, train.lr) * setting.lr_scale
            self.params[name] = [p for group in torch_groups for p in group["params"]]
            self.lr_scales[name] = [group["lr_scale"] for group in torch_groups]
            betas = tuple(beta**setting.betas_power for beta in (setting.betas or train.betas))
            self.optimizers[name] = OPTIMIZERS[train.optimizer](torch_groups, self.base_lr[name], betas, train.weight_decay,
                                                                train.momentum, fused)

    def __getitem__(self, name: str) -> torch.optim.Optimizer:
        return self.optimizers[name]

    def set_rates(self, factor: float, scheduled: Scheduled) -> None:
        """Every group's rate for this step: its base rate x `factor` (rollbacks) x the schedule's factor."""
        for name, optimizer in self.optimizers.items():
            rate = self.base_lr[name] * factor * scheduled.lr.get(name, 1.0)
            for group in optimizer.param_groups:
                group["lr"] = rate * group.get("lr_scale", 1.0)

    def state_dict(self) -> dict[str, Any]:
        return {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state[name])
            for group, scale in zip(optimizer.param_groups, self.lr_scales[name]):
                group["lr_scale"] = scale  # the family's scales, also for a checkpoint written without them

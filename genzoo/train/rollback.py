"""Divergence: a NaN or infinite loss or weight, caught before anything non-finite is saved.

Losses are read every `train.log_every` steps and checked then; at the latest, before a checkpoint
is written, the weights and the losses not yet logged are checked (`check_finite`). With
`train.on_divergence=rollback` the run goes back to the last good checkpoint (weights, EMA,
optimizers, step, data position, random state) and goes on with every learning rate multiplied by
`train.rollback_lr_factor` once per rollback, at most `train.max_rollbacks` times; diverging again
before a new checkpoint goes one checkpoint further back (the one restored may be doomed). With
`stop` it stops with one sentence. The processes of a multi-process run decide together.
"""

from __future__ import annotations

from typing import Any

import torch
from rich.console import Console
from torch import Tensor

from genzoo.errors import GenzooError
from genzoo.train.processes import Processes

Trainer = Any  # genzoo.train.trainer.Trainer, which imports this module (not imported back: no cycle)


class TrainingDiverged(GenzooError):
    """A loss became NaN or infinite; nothing non-finite was saved."""


class NonFinite(Exception):
    """Raised inside the loop when a loss or a weight is NaN or infinite (on every process alike)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def check_finite(named: dict[str, Tensor], processes: Processes) -> None:
    """Raise `NonFinite` on every process when any of `named` holds a NaN or infinity on any process."""
    named = {k: v for k, v in named.items() if v.is_floating_point()}
    if not named:
        return
    bad = torch.stack([~torch.isfinite(v).all() for v in named.values()]).to(torch.int32)  # (n,)
    flags = processes.any_true(bad)
    if any(flags):
        raise NonFinite(list(named)[flags.index(True)])


def roll_back(trainer: Trainer, error: NonFinite, console: Console) -> None:
    """Continue from the last good checkpoint with lower learning rates, or stop with one sentence."""
    train, run = trainer.config.train, trainer.run
    where = f"{error.what} became non-finite by step {trainer.step}"
    if train.on_divergence == "stop":
        raise TrainingDiverged(f"{where}; the last checkpoint is kept, so lower train.lr or try "
                               "train.mixed_precision=no, then resume or retrain.")
    if trainer.rollbacks >= train.max_rollbacks:
        raise TrainingDiverged(f"{where} with all train.max_rollbacks={train.max_rollbacks} rollbacks used; the last "
                               "good checkpoint is kept, so lower train.lr, then resume or retrain.")
    if not run.has_checkpoint():
        raise TrainingDiverged(f"{where}, before the first checkpoint to roll back to; lower train.lr or "
                               "train.checkpoint_every and retrain.")
    rollbacks = trainer.rollbacks + 1
    checkpoint = run.load_checkpoint(note=trainer.note, before_step=trainer.rolled_back_to)
    trainer.restore(checkpoint)
    trainer.rollbacks = rollbacks  # the restored count is that of the checkpoint; this one is the run's
    trainer.processes.barrier()  # every process has read it
    if trainer.processes.is_main:  # a newer checkpoint belongs to the abandoned stretch: a resume must not pick it
        run.make_latest(checkpoint)
    trainer.processes.barrier()
    trainer.rolled_back_to = trainer.step
    trainer.drop_log_after(trainer.step)
    if trainer.processes.is_main:
        scale = train.rollback_lr_factor ** rollbacks
        console.print(f"[yellow]rollback {rollbacks}/{train.max_rollbacks}:[/] {where}; back to the checkpoint "
                      f"of step {trainer.step} with the learning rates x{scale:g}.", soft_wrap=True, highlight=False)

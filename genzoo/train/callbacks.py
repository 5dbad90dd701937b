"""What the trainer is handed to do beside training: sample grids, evaluations, the report.

The trainer imports nothing above it (metrics, reports); `genzoo.api.make_trainer` hands it the
standard callbacks (`genzoo.callbacks`). `on_start` runs on every process before anything is written
(a check that can refuse the run in one sentence before any training); `on_step` and `on_end` run on
the main process only: `on_step` every `every` steps and after the last step (before that step's
checkpoint), `on_end` once when `fit` returns or stops.
"""

from __future__ import annotations

from typing import Any

Trainer = Any  # genzoo.train.trainer.Trainer, which imports this module (not imported back: no cycle)


class Callback:
    every: int | None = None  # steps between calls of on_step; None: never

    def on_start(self, trainer: Trainer) -> None:
        """Before the run folder is written: refuse what this callback could not do at step N (GenzooError)."""

    def on_step(self, trainer: Trainer) -> None:
        """After step `trainer.step` (a multiple of `every`, or the last)."""

    def on_end(self, trainer: Trainer) -> None:
        """Once, after the run finished or stopped (not after an error)."""

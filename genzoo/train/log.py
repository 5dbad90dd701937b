"""Training logs: `log.jsonl` (one JSON object per log interval), TensorBoard, and the console."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column
from rich.text import Text
from torch import Tensor


class TrainingLog:
    def __init__(self, folder: Path, enabled: bool = True) -> None:
        self.path = folder / "log.jsonl"
        self.enabled = enabled
        self._writer = None
        self.notes: list[str] = []  # what the user should know (TensorBoard off)
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            try:
                self._writer = SummaryWriter(str(folder))
            except UnicodeEncodeError:  # TensorBoard encodes the folder name as UTF-8
                self.notes.append(f"no TensorBoard events: the run folder name {str(folder)!r} is not valid UTF-8; "
                                  "log.jsonl and the report are written as usual.")

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and self._writer is not None:
                self._writer.add_scalar(key, value, record["step"])

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self._writer is not None:
            self._writer.add_scalar(tag, value, step)

    def text(self, tag: str, text: str, step: int) -> None:
        if self._writer is not None:
            self._writer.add_text(tag, text, step)

    def image(self, tag: str, grid: Tensor, step: int) -> None:
        if self._writer is not None:
            self._writer.add_image(tag, grid, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def log_interval(train: Any) -> int:
    """Steps between log records: `train.log_every`, but at least 20 records in a run, so that a short
    run's loss curves have points (a 100-step run logs every 5 steps, not once at the end); exactly
    `log_every` with `train.min_log_records=0`."""
    if not train.min_log_records:
        return train.log_every
    return min(train.log_every, max(1, train.steps // train.min_log_records))


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a crash
    return records


# ----------------------------------------------------------------------------- on the console


def progress_bar(console: Console, enabled: bool) -> Progress:
    """Line 1: family, bar, step count, speed and time left (about 60 columns, never wrapped or cut);
    line 2: the latest losses, grouped by phase, wrapped to the terminal's width."""
    return _TrainingProgress(
        TextColumn("[bold]{task.description}", table_column=_fixed()), BarColumn(bar_width=20, table_column=_fixed()),
        MofNCompleteColumn(table_column=_fixed()), TextColumn("{task.fields[speed]}", table_column=_fixed()),
        TextColumn("eta", table_column=_fixed()), TimeRemainingColumn(table_column=_fixed()),
        console=console, disable=not enabled, transient=False,
    )


def _fixed() -> Column:
    return Column(no_wrap=True)


class _TrainingProgress(Progress):
    """A progress bar with each task's `losses` field on a line of its own below the bar."""

    def get_renderables(self):  # noqa: ANN201
        yield self.make_tasks_table(self.tasks)
        for task in self.tasks:
            if task.fields.get("losses"):
                yield Text(task.fields["losses"], style="dim")


def progress_losses(record: dict[str, Any]) -> str:
    """Losses for the progress bar, grouped by phase: `discriminator: total=1.2 loss_d_real=0.61 | generator: total=0.8`."""
    phases: dict[str, list[str]] = {}
    for key, value in record.items():
        if "/" in key and not key.startswith("schedule/"):
            phase, name = key.split("/", 1)
            phases.setdefault(phase, []).append(f"{name}={value:.3g}")
    return " | ".join(f"{phase}: {' '.join(values)}" for phase, values in phases.items())


def format_record(record: dict[str, Any], total: int) -> str:
    losses = " ".join(f"{k}={v:.4g}" for k, v in record.items() if "/" in k)
    return f"step {record['step']}/{total}  {record['images_per_s']:,.0f} img/s  {losses}"

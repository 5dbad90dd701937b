"""What every procedure is, and how one runs into its run folder.

A procedure has a `Config` (a frozen pydantic model that rejects unknown keys) and two methods:
`__init__(config)` checks and loads everything it needs (files, trained runs) before anything is
written, and `run(context)` does the work with a progress bar, logging values per step and saving
pictures through the `ProcedureContext`. `run(name, overrides, out)` validates, creates and locks
the run folder, writes `config.json` ({"procedure": name, ...settings}), runs, and writes the report:

    runs/<name>/config.json  log.jsonl  result.json  losses.png  pictures/*.png  pictures/index.json  report.html
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError
from torch import Tensor

from genzoo.config import StrictModel, explain, parse_override, set_dotted
from genzoo.errors import CheckpointError
from genzoo.io import FolderLock, atomic_write_text
from genzoo.registry import PROCEDURES
from genzoo.train.checkpoint import RunFolder
from genzoo.train.log import TrainingLog


class ProcedureConfig(StrictModel):
    """Base of every procedure's `Config`."""


class ProcedureContext:
    """What a running procedure writes through: its log (one record per step) and its pictures."""

    def __init__(self, folder: RunFolder, log: TrainingLog, progress: bool) -> None:
        self.folder, self.log, self.progress = folder, log, progress
        self.pictures: list[dict[str, str]] = []

    def record(self, step: int, **values: float) -> None:
        """One log line, e.g. record(10, **{"loss/total": 0.3}); keys with a '/' are drawn in losses.png."""
        self.log.write({"step": step, **values})

    def result(self, **values: object) -> None:
        """The outcome (final scores, where outputs went) as `result.json`, shown at the top of the report."""
        atomic_write_text(self.folder.path / "result.json", json.dumps(values, indent=2) + "\n")

    def picture(self, name: str, images: Tensor, caption: str, columns: int | None = None) -> Path:
        """Save images (n, C, H, W) in [-1, 1] as `pictures/<name>.png` for the report."""
        from genzoo.report.grids import save_grid

        path = self.folder.path / "pictures" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        save_grid(images, path, columns)
        self.pictures = [p for p in self.pictures if p["file"] != path.name] + [{"file": path.name, "caption": caption}]
        atomic_write_text(path.parent / "index.json", json.dumps(self.pictures, indent=2) + "\n")
        return path


    def figure(self, name: str, figure, caption: str) -> Path:  # noqa: ANN001  (a matplotlib Figure)
        """Save a matplotlib figure as `pictures/<name>.png` for the report, and close it."""
        import matplotlib.pyplot as plt

        from genzoo.io import atomic_write

        path = self.folder.path / "pictures" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=110, format="png", bbox_inches="tight"))
        plt.close(figure)
        self.pictures = [p for p in self.pictures if p["file"] != path.name] + [{"file": path.name, "caption": caption}]
        atomic_write_text(path.parent / "index.json", json.dumps(self.pictures, indent=2) + "\n")
        return path


def free_folder(base: str | Path) -> Path:
    """`base` if it does not exist yet, else the first of base-2, base-3, ... that does not (default run folders)."""
    base = Path(base)
    if not base.exists():
        return base
    number = 2
    while base.with_name(f"{base.name}-{number}").exists():
        number += 1
    return base.with_name(f"{base.name}-{number}")


class Procedure:
    Config: ClassVar[type[ProcedureConfig]]

    def __init__(self, config: ProcedureConfig) -> None:
        self.config = config

    def run(self, context: ProcedureContext) -> None:  # pragma: no cover
        raise NotImplementedError


def build_procedure_config(name: str, raw: dict[str, Any]) -> ProcedureConfig:
    procedure = PROCEDURES.get(name)
    try:
        return procedure.Config.model_validate(raw)
    except ValidationError as error:
        raise explain(error, procedure.Config) from None


def run(name: str, overrides: list[str], out: str | Path, progress: bool = True) -> RunFolder:
    """Run procedure `name` with `key=value` overrides into the run folder `out`."""
    raw: dict[str, Any] = {}
    for item in overrides:
        set_dotted(raw, *parse_override(item))
    config = build_procedure_config(name, raw)
    folder = RunFolder(out)
    if folder.config.exists() or folder.has_checkpoint():
        raise CheckpointError(f"{str(folder.path)!r} already holds a run; choose another --out.")
    folder.check_writable()
    procedure = PROCEDURES.get(name)(config)  # loads and checks its inputs before anything is written
    folder.create()
    lock = FolderLock(folder.path)
    lock.acquire("run into it")
    log = TrainingLog(folder.path)
    try:
        if folder.config.exists():  # another process started a run here since the check above
            raise CheckpointError(f"{str(folder.path)!r} already holds a run; choose another --out.")
        atomic_write_text(folder.config, json.dumps({"procedure": name, **config.model_dump(mode="json")}, indent=2) + "\n")
        procedure.run(ProcedureContext(folder, log, progress))
    finally:
        log.close()
        lock.release()
    from genzoo.report import write_report

    write_report(folder)
    return folder

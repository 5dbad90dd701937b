"""The Python API: train a run, load a trained model, run a procedure, list what genzoo has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genzoo.callbacks import standard_callbacks
from genzoo.config import RunConfig, build_config, list_presets, load_config, parse_override, set_dotted
from genzoo.loading import load
from genzoo.registry import DATASETS, MODELS, PROCEDURES
from genzoo.train.checkpoint import RunFolder
from genzoo.train.trainer import Trainer


def _items(overrides: dict[str, Any] | list[str] | None) -> list[str]:
    if isinstance(overrides, dict):
        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    return list(overrides or [])


def make_trainer(config: RunConfig, out: str | Path, resume: bool = False, progress: bool = True) -> Trainer:
    """A `Trainer` with the standard callbacks: sample previews, periodic evaluation, the report."""
    return Trainer(config, out, resume=resume, progress=progress, callbacks=standard_callbacks(config))


def train(
    source: str | Path | RunConfig,
    out: str | Path | None = None,
    *,
    data: str | None = None,
    steps: int | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> RunFolder:
    """Train a preset, family or YAML file (or a `RunConfig`) into `out` (default runs/<source>).

    `overrides`: dotted keys to values, as a dict ({"train.batch_size": 128}) or as the CLI's
    "key=value" strings.
    """
    items = _items(overrides)
    items += [f"data.name={data}"] * (data is not None) + [f"train.steps={steps}"] * (steps is not None)
    if isinstance(source, RunConfig):
        raw = source.model_dump(mode="json")
        for item in items:
            set_dotted(raw, *parse_override(item))
        config, name = build_config(raw), source.family
    else:
        config, name = load_config(str(source), items), Path(source).stem
    return make_trainer(config, out or Path("runs") / name, resume=resume, progress=progress).fit()


def run_procedure(name: str, out: str | Path | None = None, *, overrides: dict[str, Any] | list[str] | None = None,
                  progress: bool = True) -> RunFolder:
    """Run a registered procedure (`genzoo list`) with `key=value` settings into `out` (default runs/<name>)."""
    from genzoo.procedures import run

    return run(name, _items(overrides), out or Path("runs") / name, progress=progress)


def list_families() -> list[str]:
    return MODELS.names()


def list_datasets() -> list[str]:
    return DATASETS.names()


def list_procedures() -> list[str]:
    return PROCEDURES.names()


__all__ = ["list_datasets", "list_families", "list_presets", "list_procedures", "load", "make_trainer", "run_procedure",
           "train"]

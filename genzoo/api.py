"""The Python API: train a run, load a trained model, run a procedure, list what genzoo has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genzoo.callbacks import standard_callbacks
from genzoo.config import RunConfig, build_config, list_presets, load_config, parse_override, set_dotted
from genzoo.data.info import DataInfo
from genzoo.errors import GenzooError, RunFinished
from genzoo.loading import load
from genzoo.registry import DATASETS, MODELS, PROCEDURES
from genzoo.train.checkpoint import RunFolder
from genzoo.train.trainer import Trainer


def _items(overrides: dict[str, Any] | list[str] | None) -> list[str]:
    if isinstance(overrides, dict):
        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    return list(overrides or [])


def make_trainer(config: RunConfig, out: str | Path, resume: bool = False, progress: bool = True) -> Trainer:
    """A `Trainer` with the standard callbacks: sample previews, periodic evaluation, the report.

    The config it writes to config.json holds the values the data decided (image size and channels
    left unset), so that the file says what ran and a resume rebuilds the same networks."""
    trainer = Trainer(config, out, resume=resume, progress=progress, callbacks=standard_callbacks(config))
    trainer.config = with_data_values(trainer.config, trainer.data.info)
    return trainer


def with_data_values(config: RunConfig, info: DataInfo) -> RunConfig:
    """`config` with data.image_size and data.channels set to those of the loaded images where they were
    unset. Only image data (1 or 3 channels) has them; points and text leave them unset."""
    if info.channels not in (1, 3) or not info.image_size:
        return config
    data = config.data
    updates = {"image_size": data.image_size or info.image_size, "channels": data.channels or info.channels}
    return config.model_copy(update={"data": data.model_copy(update=updates)})


def check_resume(config: RunConfig, folder: RunFolder, steps_given: bool) -> RunConfig:
    """Before a resume changes anything: refuse a step count the run has already reached (one sentence), say
    that a finished run is finished (`RunFinished`), and keep the data values the run resolved."""
    if folder.config.is_file():
        saved = build_config(folder.read_config())
        if saved.family != config.family or saved.model != config.model:
            return config  # another run: the trainer says what differs
        updates = {key: getattr(saved.data, key) for key in ("image_size", "channels")
                   if getattr(config.data, key) is None and getattr(saved.data, key) is not None}
        if updates:
            config = config.model_copy(update={"data": config.data.model_copy(update=updates)})
    step = folder.saved_step() if folder.has_checkpoint() else None
    if step is None or config.train.steps > step:
        return config
    if steps_given:
        raise GenzooError(f"{str(folder.path)!r} is already at step {step}, so training until step "
                          f"{config.train.steps} has nothing to do; give more steps, e.g. --steps {2 * step}.")
    raise RunFinished(f"{folder.path} is finished: it trained all {step} of its steps; nothing to do (train it "
                      f"further with `genzoo resume {folder.path} --steps N`, N > {step}).")


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
    out = out or Path("runs") / name
    if resume:
        steps_given = steps is not None or any(item.split("=", 1)[0].strip() == "train.steps" for item in items)
        config = check_resume(config, RunFolder(out), steps_given)
    return make_trainer(config, out, resume=resume, progress=progress).fit()


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


__all__ = ["check_resume", "list_datasets", "list_families", "list_presets", "list_procedures", "load", "make_trainer", "run_procedure",
           "train", "with_data_values"]

"""The Python API: train a run, load a trained model, list what genzoo has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from genzoo.config import RunConfig, build_config, list_presets, load_config, parse_override, set_dotted
from genzoo.errors import CheckpointError
from genzoo.models.base import DataInfo, GenerativeModel
from genzoo.registry import DATASETS, MODELS
from genzoo.train.checkpoint import RunFolder
from genzoo.train.trainer import Trainer


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
    if isinstance(overrides, dict):
        items = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    else:
        items = list(overrides or [])
    items += [f"data.name={data}"] * (data is not None) + [f"train.steps={steps}"] * (steps is not None)
    if isinstance(source, RunConfig):
        raw = source.model_dump(mode="json")
        for item in items:
            set_dotted(raw, *parse_override(item))
        config, name = build_config(raw), source.family
    else:
        config, name = load_config(str(source), items), Path(source).stem
    return Trainer(config, out or Path("runs") / name, resume=resume, progress=progress).fit()


def load(run: str | Path | RunFolder, ema: bool | None = None, device: str | torch.device = "cpu") -> GenerativeModel:
    """Rebuild a trained model from its run folder (config.json + model.safetensors), in eval mode.

    ema: None uses the EMA weights when the run has them; True requires them; False ignores them.
    """
    folder = run if isinstance(run, RunFolder) else RunFolder(run)  # genzoo.load(genzoo.train(...)) works
    config = build_config(folder.read_config())
    tensors, metadata = folder.load_weights()
    if metadata.get("family") != config.family:
        raise CheckpointError(f"{folder.weights} holds a {metadata.get('family')!r} model but config.json says {config.family!r}; the run folder is mixed up.")
    model = MODELS.get(config.family)(config.model, DataInfo(**metadata["data_info"]))
    try:
        model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("ema.")})
    except RuntimeError:
        raise CheckpointError(f"the weights in {folder.weights} do not fit the model config.json describes; the run folder is mixed up.") from None
    averaged = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    if ema and not averaged:
        raise CheckpointError(f"{str(folder.path)!r} has no EMA weights; drop --ema or train with train.ema_decay=0.999.")
    if averaged and ema is not False:
        model.load_state_dict(averaged, strict=False)
    model.uses_ema = bool(averaged) and ema is not False
    return model.to(device).eval()


def list_families() -> list[str]:
    return MODELS.names()


def list_datasets() -> list[str]:
    return DATASETS.names()


__all__ = ["list_datasets", "list_families", "list_presets", "load", "train"]

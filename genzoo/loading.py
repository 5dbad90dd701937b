"""Load a trained model from its run folder: `genzoo.load`."""

from __future__ import annotations

from pathlib import Path

import torch

from genzoo.config import build_config
from genzoo.data.info import DataInfo
from genzoo.errors import CheckpointError
from genzoo.models.base import GenerativeModel
from genzoo.registry import MODELS
from genzoo.train.checkpoint import RunFolder


def load(run: str | Path | RunFolder, ema: bool | None = None, device: str | torch.device = "cpu") -> GenerativeModel:
    """Rebuild a trained model from its run folder (config.json + model.safetensors), in eval mode.

    ema: None uses the EMA weights when the run has them; True requires them; False ignores them.
    The model's schedule is set to the saved step (e.g. the resolution a growing GAN had reached).
    """
    folder = run if isinstance(run, RunFolder) else RunFolder(run)  # genzoo.load(genzoo.train(...)) works
    config = build_config(folder.read_config())
    tensors, metadata = folder.load_weights()
    if metadata.get("family") != config.family:
        raise CheckpointError(f"{folder.weights} holds a {metadata.get('family')!r} model but config.json says "
                              f"{config.family!r}; the run folder is mixed up.")
    with torch.random.fork_rng(devices=[]):  # the initial weights, overwritten below, leave the caller's random state alone
        model = MODELS.get(config.family)(config.model, DataInfo.from_dict(metadata["data_info"]))
    try:
        model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("ema.")})
    except RuntimeError:
        raise CheckpointError(f"the weights in {folder.weights} do not fit the model config.json describes; "
                              "the run folder is mixed up.") from None
    averaged = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    if ema and not averaged:
        raise CheckpointError(f"{str(folder.path)!r} has no EMA weights; drop --ema or train with train.ema_decay=0.999.")
    if averaged and ema is not False:
        model.load_state_dict(averaged, strict=False)
    model.uses_ema = bool(averaged) and ema is not False
    model.schedule(int(metadata.get("step", 0)), config.train.steps)
    return model.to(device).eval()


def initial_model(run: str | Path | RunFolder, device: str | torch.device = "cpu") -> GenerativeModel:
    """The run's model at its initial weights, before any step: rebuilt as the trainer builds it (the
    random state seeded with train.seed, the dataset built, then the model), in eval mode. The caller's
    random state is left alone. For pictures of what training changed (e.g. features before and after
    domain adaptation); a run whose dataset draws random numbers differently now would differ."""
    from genzoo.data import build_dataset

    folder = run if isinstance(run, RunFolder) else RunFolder(run)
    config = build_config(folder.read_config())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        data = build_dataset(config.data)
        model = MODELS.get(config.family)(config.model, data.info)
    model.uses_ema = False
    model.schedule(0, config.train.steps)
    return model.to(device).eval()

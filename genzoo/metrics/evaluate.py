"""`evaluate` a run or model against its data, or two folders of images against each other."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_args

import torch

from genzoo.config import DataConfig, build_config
from genzoo.data import build_dataset
from genzoo.errors import GenzooError
from genzoo.metrics.context import EvalContext, Score, model_batches
from genzoo.data.base import ImageData
from genzoo.metrics.features import FeatureNetwork, load_features
from genzoo.registry import METRICS

DEFAULT_METRICS = ("fid", "kid", "is", "pr", "dc", "variety")


def sampling_protocol(model: Any) -> dict | None:
    """The model's default sampler settings (steps, guidance, ...) where it has any, e.g. diffusion."""
    describe = getattr(model, "sampling_protocol", None)
    return describe() if callable(describe) else None


def compute(ctx: EvalContext, metrics: Iterable[str]) -> list[Score]:
    functions = [METRICS.get(name) for name in metrics]  # unknown names fail before any work
    return [score for function in functions for score in function(ctx)]


def _reference(config: DataConfig, data_source: str) -> dict[str, Any]:
    return {"dataset": config.name, "split": config.split, "source": data_source,
            "image_size": config.image_size, "channels": config.channels}


def evaluate(model_or_run: Any, metrics: Iterable[str] = DEFAULT_METRICS, *, data: DataConfig | str | None = None,
             split: str | None = None, num_samples: int = 10_000, num_real: int | None = None,
             extractor: str = "fmnist", extractor_weights: str | None = None, ema: bool | None = None,
             batch_size: int = 500, seed: int = 0, device: str = "cpu", use_cache: bool = True) -> list[Score]:
    """Score a run folder (or a loaded model with `data=`) with the named metrics.

    The real reference is the run's training data (its split unless `split` says otherwise), at
    most `num_real` images (default: max(num_samples, 10,000), capped at the split's size).
    """
    from genzoo.loading import load

    metrics = list(metrics)
    for name in metrics:
        METRICS.get(name)
    run_path = None
    if isinstance(model_or_run, (str, Path)):
        run_path = Path(model_or_run)
        from genzoo.train.checkpoint import RunFolder

        run_config = build_config(RunFolder(run_path).read_config())
        model = load(run_path, ema=ema, device=device)
        data_config = run_config.data
    else:
        model = model_or_run
        if data is None:
            raise GenzooError("evaluating a model object needs data=...: a dataset name or a DataConfig.")
        data_config = None
    if isinstance(data, str):
        data_config = (data_config or DataConfig()).model_copy(update={"name": data})
    elif isinstance(data, DataConfig):
        data_config = data
    if split is not None:
        splits = get_args(DataConfig.model_fields["split"].annotation)
        if split not in splits:  # model_copy does not validate
            raise GenzooError(f"--split {split!r} is not a split; choose one of: {', '.join(splits)}.")
        data_config = data_config.model_copy(update={"split": split})
    if data_config.target is not None:  # domain adaptation: the target at the same split, all of it
        data_config = data_config.model_copy(update={"target": data_config.target.model_copy(
            update={"split": data_config.split, "max_images": None})})
    network = load_features(extractor, extractor_weights)
    real = build_dataset(data_config.model_copy(update={"max_images": None}))
    num_real = min(num_real or max(num_samples, 10_000), len(real))
    ctx = EvalContext(network, real, _reference(data_config, real.source), num_real,
                      model_batches(model, num_samples, batch_size, seed) if _needs_fake(metrics) else None,
                      num_samples, model=model, batch_size=batch_size, seed=seed, device=device,
                      protocol={"ema": bool(getattr(model, "uses_ema", False)), "sampler": sampling_protocol(model),
                                "run": None if run_path is None else str(run_path)},
                      use_cache=use_cache)
    scores = compute(ctx, metrics)
    if run_path is not None:
        _append_metrics(run_path, scores)
    return scores


def evaluate_folders(real_dir: str | Path, fake_dir: str | Path, metrics: Iterable[str] = ("fid", "kid", "pr", "dc"),
                     *, num_samples: int | None = None, extractor: str = "fmnist", extractor_weights: str | None = None,
                     batch_size: int = 500, seed: int = 0, device: str = "cpu") -> list[Score]:
    """Score a folder of generated images against a folder of real ones, as standalone FID tools do."""
    network = load_features(extractor, extractor_weights)
    loaded = {}
    for role, folder in (("real", real_dir), ("fake", fake_dir)):
        config = DataConfig(name="image-folder", root=str(folder), image_size=network.input_size, channels=network.channels)
        loaded[role] = (config, build_dataset(config))
    (real_config, real), (_, fake) = loaded["real"], loaded["fake"]
    resize = f"folders: shorter side to {network.input_size} (antialiased bilinear), centre crop"
    return evaluate_data(real, fake, metrics, reference=_reference(real_config, real.source), network=network,
                         num_samples=num_samples, batch_size=batch_size, seed=seed, device=device,
                         protocol={"fake": str(fake_dir), "folder_resize": resize})


def evaluate_data(real: ImageData, fake: ImageData, metrics: Iterable[str], *, reference: dict[str, Any],
                  network: FeatureNetwork, num_samples: int | None = None, num_real: int | None = None,
                  batch_size: int = 500, seed: int = 0, device: str = "cpu",
                  protocol: dict[str, Any] | None = None) -> list[Score]:
    """Score in-memory fake images against real ones (both `ImageData`, images in [-1, 1])."""
    metrics = list(metrics)  # `compute` checks the names before any feature is extracted
    if "recon" in metrics:
        raise GenzooError("the recon metric needs a model; it cannot be computed from two sets of images.")
    num_fake = num_samples or len(fake)
    if num_fake > len(fake):
        raise GenzooError(f"the generated set holds {len(fake)} images, fewer than the {num_fake} asked; lower --num-samples.")
    num_real = min(num_real or num_samples or len(real), len(real))

    def fake_batches():
        for start in range(0, num_fake, batch_size):
            yield fake.batch(torch.arange(start, min(start + batch_size, num_fake)))["image"]

    ctx = EvalContext(network, real, reference, num_real, fake_batches, num_fake, batch_size=batch_size, seed=seed,
                      device=device, protocol={"ema": None, "sampler": None, **(protocol or {})}, use_cache=False)
    return compute(ctx, metrics)


def _needs_fake(metrics: list[str]) -> bool:
    return any(name != "recon" and getattr(METRICS.get(name), "uses_fake", True) for name in metrics)


def _append_metrics(run: Path, scores: list[Score]) -> None:
    from genzoo.train.checkpoint import RunFolder

    folder = RunFolder(run)
    step = None
    try:
        step = folder.load_weights()[1].get("step")
    except GenzooError:
        pass
    record = {"step": step, "time": time.time(), "scores": [s.as_dict() for s in scores]}
    try:
        with open(run / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    except OSError:
        pass  # read-only run folders can still be evaluated

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
from genzoo.metrics.context import EvalContext, Score
from genzoo.metrics.features import FeatureNetwork, load_features
from genzoo.metrics.folders import DEFAULT_FOLDER_RESIZE, load_folder
from genzoo.metrics.translation import image_source
from genzoo.registry import METRICS
from genzoo.train.checkpoint import print_note

DEFAULT_METRICS = ("fid", "kid", "is", "pr", "dc", "variety")
LIKELIHOOD_METRICS = ("nll", "elbo")  # the metrics that read no images, so apply to text models too


def check_modality(modality: str, metrics: Iterable[str], what: str) -> None:
    """Refuse image metrics for a model that makes something else (text), before any work."""
    others = [name for name in metrics if name not in LIKELIHOOD_METRICS]
    if modality == "text" and others:  # (classifiers, modality "label", are scored by accuracy metrics that check themselves)
        raise GenzooError(f"{what} makes {modality}, not images, so {', '.join(others)} do not apply; use --metrics nll.")


def sampling_protocol(model: Any) -> dict | None:
    """The model's default sampler settings (steps, guidance, ...) where it has any, e.g. diffusion."""
    describe = getattr(model, "sampling_protocol", None)
    return describe() if callable(describe) else None


class Scores(list):
    """The scores (a list of `Score`), and `skipped`: metric -> the sentence that says why it was not computed."""

    def __init__(self, scores: Iterable[Score] = (), skipped: dict[str, str] | None = None) -> None:
        super().__init__(scores)
        self.skipped: dict[str, str] = dict(skipped or {})


def compute(ctx: EvalContext, metrics: Iterable[str], skip_refused: bool = False,
            skipped: dict[str, str] | None = None) -> Scores:
    """Every metric's scores. A metric that refuses (a `GenzooError`, e.g. FID from too few images) stops the
    evaluation, or with `skip_refused` is left out and named in `Scores.skipped`, unless every metric refused."""
    functions = [(name, METRICS.get(name)) for name in metrics]  # unknown names fail before any work
    scores = Scores(skipped=skipped)
    first_refusal = None
    for name, function in functions:
        try:
            scores.extend(function(ctx))
        except GenzooError as error:
            if not skip_refused:
                raise
            first_refusal = first_refusal or error
            scores.skipped[name] = str(error)
    if first_refusal is not None and not scores:
        raise first_refusal
    return scores


def fid_refusal(network: FeatureNetwork, sides: list[tuple[str, int, str]]) -> str | None:
    """The sentence refusing FID when a side has fewer than D + 1 images (its covariance would be singular):
    `sides` are (what holds the images, how many, what to do); None when every side has enough."""
    need = network.feature_dim + 1
    short = [(what, count, advice) for what, count, advice in sides if count < need]
    if not short:
        return None
    what = " and ".join(f"{what} {count}" for what, count, _ in short)
    advice = " and ".join(dict.fromkeys(advice.format(need=need) for _, _, advice in short))
    return (f"FID in {network.name} features ({network.feature_dim} dimensions) needs at least {need} images on each "
            f"side, and {what}; {advice} (kid, pr and dc work with fewer).")


def _refuse_fid(metrics: list[str], refusal: str | None, skip_refused: bool) -> tuple[list[str], dict[str, str]]:
    """The metrics left to compute once FID is refused (and the refusal), or the refusal raised."""
    if refusal is None or "fid" not in metrics:
        return metrics, {}
    if not skip_refused or metrics == ["fid"]:
        raise GenzooError(refusal)
    return [m for m in metrics if m != "fid"], {"fid": refusal}


def data_reference(config: DataConfig, data: Any) -> dict[str, Any]:
    """What the real images are, as loaded: the split they really are (None for data without splits), their
    source with absolute paths, and the loader's notes (e.g. a fallback to the embedded test split)."""
    reference = {"dataset": config.name, "split": getattr(data, "split", None), "source": data.source,
                 "image_size": config.image_size, "channels": config.channels,
                 **({"pad_to": config.pad_to} if config.pad_to else {})}
    return {**reference, "notes": list(data.notes)} if data.notes else reference


def _check_split(split: str, config: DataConfig, data: Any) -> None:
    """Refuse an explicit --split that the loaded data does not have, rather than label other images with it."""
    if getattr(data, "split", None) == split:
        return
    if getattr(data, "split", None) is None:
        raise GenzooError(f"dataset {config.name!r} has no splits, so --split {split} cannot be honoured; drop --split.")
    raise GenzooError(f"--split {split} is not available here: {config.name!r} gave its {data.split} split "
                      f"({data.source}); drop --split, or install the full dataset for its {split} split.")


def _absolute_root(config: DataConfig) -> DataConfig:
    if config.root is None:
        return config
    return config.model_copy(update={"root": str(Path(config.root).expanduser().resolve())})


def evaluate(model_or_run: Any, metrics: Iterable[str] = DEFAULT_METRICS, *, data: DataConfig | str | None = None,
             split: str | None = None, num_samples: int = 10_000, num_real: int | None = None,
             extractor: str = "fmnist", extractor_weights: str | None = None, ema: bool | None = None,
             batch_size: int = 500, seed: int = 0, device: str = "cpu", use_cache: bool = True,
             sampling: dict[str, Any] | None = None, skip_refused: bool = False) -> Scores:
    """Score a run folder (or a loaded model with `data=`) with the named metrics.

    The real reference is the run's training data (its split unless `split` says otherwise), at
    most `num_real` images (default: max(num_samples, 10,000), capped at the split's size).
    `sampling`: options of the model's `generate` (diffusion: steps, sampler, eta, guidance; GAN:
    truncation), used for every sample and stated in the protocol. `skip_refused`: compute the metrics
    that can be computed and name the others in `Scores.skipped`, instead of stopping at the first refusal.
    """
    from genzoo.sampling import WithSampling, sampling_options

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
        averaging = {"ema_decay": run_config.train.ema_decay, "ema_warmup": run_config.train.ema_warmup}
    else:
        model, averaging = model_or_run, {}
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
    check_modality(getattr(model, "modality", "image"), metrics, f"a {type(model).__name__} model")
    if sampling:
        model = WithSampling(model, sampling_options(model, **sampling))
    if data_config.target is not None:  # domain adaptation: the target at the same split, all of it
        data_config = data_config.model_copy(update={"target": data_config.target.model_copy(
            update={"split": data_config.split, "max_images": None})})
    network = load_features(extractor, extractor_weights)
    data_config = _absolute_root(data_config)
    real = build_dataset(data_config.model_copy(update={"max_images": None}))
    if split is not None:
        _check_split(split, data_config, real)
    for note in real.notes:
        print_note(note)
    reference_data = data_reference(data_config, real)
    source = image_source(model, real, num_samples, batch_size, seed) if _needs_fake(metrics) else None
    real = source.real if source else real  # a translating model: the images of the domain it translates into
    num_real = min(num_real or max(num_samples, 10_000), len(real))
    num_fake = source.count if source else num_samples
    reference = (("--num-real is", num_real, "give --num-real {need} or more") if num_real < len(real) else
                 (f"the reference ({real.source}) has", num_real, "use a reference with more images (--split all, or more data)"))
    refusal = fid_refusal(network, [reference, ("--num-samples is", num_fake, "give --num-samples {need} or more")])
    metrics, skipped = _refuse_fid(metrics, refusal, skip_refused)
    uses_ema = bool(getattr(model, "uses_ema", False))
    ctx = EvalContext(network, real, {**reference_data, "source": real.source}, num_real,
                      source.batches if source else None, num_fake, model=model, batch_size=batch_size, seed=seed,
                      device=device,
                      protocol={"ema": uses_ema, **(averaging if uses_ema else {}), "sampler": sampling_protocol(model),
                                "run": None if run_path is None else str(run_path.resolve()),
                                **(source.protocol if source else {})},
                      use_cache=use_cache)
    scores = compute(ctx, metrics, skip_refused, skipped)
    if run_path is not None:
        _append_metrics(run_path, scores)
    return scores


def evaluate_folders(real_dir: str | Path, fake_dir: str | Path, metrics: Iterable[str] = ("fid", "kid", "pr", "dc"),
                     *, num_samples: int | None = None, extractor: str = "fmnist", extractor_weights: str | None = None,
                     folder_resize: str | None = None, batch_size: int = 500, seed: int = 0,
                     device: str = "cpu", skip_refused: bool = False) -> Scores:
    """Score a folder of generated images against a folder of real ones, as standalone FID tools do.

    `folder_resize` is how files become network inputs (`genzoo.metrics.folders`): "pytorch-fid" (the default
    for the inception extractor: pytorch-fid's exact pipeline) or "crop" (the default otherwise)."""
    network = load_features(extractor, extractor_weights)
    pipeline = folder_resize or DEFAULT_FOLDER_RESIZE.get(network.name, "crop")
    real, description = load_folder(real_dir, network, pipeline)
    fake, _ = load_folder(fake_dir, network, pipeline)
    reference = {"dataset": "image-folder", "split": None, "source": real.source, "image_size": network.input_size,
                 "channels": network.channels}
    _check_fake_count(num_samples, len(fake))
    used = [(folder, len(data) if num_samples is None else min(num_samples, len(data)))
            for folder, data in ((real_dir, real), (fake_dir, fake))]
    refusal = fid_refusal(network, [(f"{str(folder)!r} gives", count, "add images to the folders (and raise "
                                     "--num-samples) to reach {need}" if num_samples else "add images to the folders "
                                     "to reach {need}") for folder, count in used])
    metrics, skipped = _refuse_fid(list(metrics), refusal, skip_refused)
    return evaluate_data(real, fake, metrics, reference=reference, network=network, num_samples=num_samples,
                         batch_size=batch_size, seed=seed, device=device,
                         protocol={"fake": str(Path(fake_dir).expanduser().resolve()), "folder_resize": pipeline,
                                   "folder_pipeline": description},
                         skip_refused=skip_refused, skipped=skipped)


def evaluate_data(real: Any, fake: Any, metrics: Iterable[str], *, reference: dict[str, Any],
                  network: FeatureNetwork, num_samples: int | None = None, num_real: int | None = None,
                  batch_size: int = 500, seed: int = 0, device: str = "cpu",
                  protocol: dict[str, Any] | None = None, skip_refused: bool = False,
                  skipped: dict[str, str] | None = None) -> Scores:
    """Score in-memory fake images against real ones (`ImageData` or `FolderImages`: `batch(indices)` gives
    images in [-1, 1])."""
    metrics = list(metrics)  # `compute` checks the names before any feature is extracted
    skipped = dict(skipped or {})
    if "recon" in metrics:
        reason = "the recon metric needs a model; it cannot be computed from two sets of images."
        if not skip_refused or metrics == ["recon"]:
            raise GenzooError(reason)
        metrics, skipped["recon"] = [m for m in metrics if m != "recon"], reason
    num_fake = num_samples or len(fake)
    _check_fake_count(num_fake, len(fake))
    num_real = min(num_real or num_samples or len(real), len(real))

    def fake_batches():
        for start in range(0, num_fake, batch_size):
            yield fake.batch(torch.arange(start, min(start + batch_size, num_fake)))["image"]

    ctx = EvalContext(network, real, reference, num_real, fake_batches, num_fake, batch_size=batch_size, seed=seed,
                      device=device, protocol={"ema": None, "sampler": None, **(protocol or {})}, use_cache=False)
    return compute(ctx, metrics, skip_refused, skipped)


def _check_fake_count(asked: int | None, held: int) -> None:
    if asked is not None and asked > held:
        raise GenzooError(f"the generated set holds {held} images, fewer than the {asked} asked; lower --num-samples.")


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

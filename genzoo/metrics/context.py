"""Evaluation: images from any model or folder -> features -> scores that state their protocol.

An `EvalContext` holds the feature network, the real data and where fake images come from; real
and fake features are extracted once, lazily, when the first metric asks for them, and reference
(real) features are cached on disk keyed by dataset, split, transform, count and extractor. Each
registered metric is a function `ctx -> list[Score]`; every `Score` carries its protocol: metric,
extractor and the sha256 of its weights, n_real, n_fake, reference, resize, EMA, sampler, seed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from rich.progress import track
from safetensors.torch import load_file, save_file
from torch import Tensor

from genzoo.data.base import ImageData
from genzoo.errors import GenzooError
from genzoo.metrics.features import FeatureNetwork
from genzoo.metrics.functional import RunningMoments
from genzoo.models.base import CanGenerate


@dataclass
class Score:
    name: str  # e.g. "fid-fmnist"
    value: float
    std: float | None = None
    protocol: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FeatureSet:
    features: Tensor  # (N, D) float32, on the CPU
    logits: Tensor  # (N, K) float32
    moments: RunningMoments  # float64 mean and covariance of the features
    labels: Tensor | None = None  # (N,) int64, for labelled real data

    def __len__(self) -> int:
        return len(self.features)


def extract(batches: Iterator[Tensor], network: FeatureNetwork, description: str, device: torch.device) -> FeatureSet:
    features, logits, moments = [], [], RunningMoments()
    for images in track(batches, description=description, total=None, transient=True):
        out = network(images.to(device))
        moments.update(out["features"])
        features.append(out["features"].cpu())
        logits.append(out["logits"].cpu())
    return FeatureSet(torch.cat(features), torch.cat(logits), moments)


def cache_dir() -> Path:
    return Path(os.environ.get("GENZOO_CACHE", Path.home() / ".cache" / "genzoo")).expanduser() / "reference"


class EvalContext:
    """What the metrics read: lazily extracted real and fake features, the model, the protocol."""

    def __init__(self, network: FeatureNetwork, real: ImageData, reference: dict[str, Any], num_real: int,
                 fake_batches: Callable[[], Iterator[Tensor]] | None, num_fake: int, model: Any = None,
                 batch_size: int = 500, seed: int = 0, device: str | torch.device = "cpu",
                 protocol: dict[str, Any] | None = None, use_cache: bool = True,
                 real_features: FeatureSet | None = None) -> None:
        if num_real > len(real):
            raise GenzooError(f"the reference data has {len(real)} images, fewer than the {num_real} asked; lower --num-samples or --num-real.")
        self.network, self.real_data, self.reference = network, real, reference
        self.num_real, self.num_fake, self.fake_batches, self.model = num_real, num_fake, fake_batches, model
        self.batch_size, self.seed, self.device, self.use_cache = batch_size, seed, torch.device(device), use_cache
        self.protocol = {**network.protocol, "n_real": num_real, "n_fake": num_fake, "reference": reference,
                         "seed": seed, **(protocol or {})}
        self.network.to(self.device)
        if real_features is not None:  # features of the same reference, extracted earlier
            self.real = real_features

    def real_indices(self) -> Tensor:
        if self.num_real == len(self.real_data):
            return torch.arange(self.num_real)
        return torch.randperm(len(self.real_data), generator=torch.Generator().manual_seed(self.seed))[: self.num_real]

    def real_batches(self) -> Iterator[Tensor]:
        for batch in self.real_dict_batches():
            yield batch["image"]

    def real_dict_batches(self) -> Iterator[dict[str, Tensor]]:
        """The real images as whole batches (image, label, ...), on the evaluation device."""
        indices = self.real_indices()
        for start in range(0, len(indices), self.batch_size):
            batch = self.real_data.batch(indices[start : start + self.batch_size])
            yield {key: value.to(self.device) for key, value in batch.items()}

    @cached_property
    def real(self) -> FeatureSet:
        key = hashlib.sha256(json.dumps({**self.reference, "n": self.num_real, "seed": self.seed,
                                         **self.network.protocol}, sort_keys=True).encode()).hexdigest()[:24]
        path = cache_dir() / f"{self.network.name}-{key}.safetensors"
        labels = None if self.real_data.labels is None else self.real_data.labels[self.real_indices()].cpu()
        if self.use_cache and path.is_file():
            try:
                saved = load_file(str(path))
                return FeatureSet(saved["features"], saved["logits"], RunningMoments.from_state(
                    {k[8:]: v for k, v in saved.items() if k.startswith("moments.")}), labels)
            except Exception:  # noqa: BLE001  (a damaged cache file is recomputed)
                pass
        result = extract(self.real_batches(), self.network, "features of real images", self.device)
        result.labels = labels
        if self.use_cache:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tensors = {"features": result.features.contiguous(), "logits": result.logits.contiguous(),
                           **{f"moments.{k}": v for k, v in result.moments.state_dict().items()}}
                temporary = path.with_suffix(f".tmp-{os.getpid()}")
                save_file(tensors, str(temporary), metadata={"reference": json.dumps(self.reference)})
                os.replace(temporary, path)
            except OSError:
                pass  # an unwritable cache only costs time
        return result

    @cached_property
    def fake(self) -> FeatureSet:
        if self.fake_batches is None:
            raise GenzooError("this evaluation has no generated images; give a run whose model generates or --fake DIR.")
        return extract(self.fake_batches(), self.network, "features of generated images", self.device)


def model_batches(model: Any, n: int, batch_size: int, seed: int) -> Callable[[], Iterator[Tensor]]:
    """Images from any model that produces them (today: `generate`), in batches, reproducibly."""
    if not isinstance(model, CanGenerate):
        raise GenzooError(f"a {type(model).__name__} model does not generate images, so image-quality metrics "
                          "do not apply; use the recon metric, or evaluate a generative run.")

    def batches() -> Iterator[Tensor]:
        generator = torch.Generator(device=model.device).manual_seed(seed)
        for start in range(0, n, batch_size):
            yield model.generate(min(batch_size, n - start), generator=generator)

    return batches

"""Evaluation: images from any model or folder -> features -> scores that state their protocol.

An `EvalContext` holds the feature network, the real data and where fake images come from; real
and fake features are extracted once, lazily, when the first metric asks for them. Reference (real)
features are cached on disk keyed by the sha256 of the real images used (uint8, in order) and the
feature network's protocol; an entry is used only if its checksum, its key and the agreement of its
features with its stored moments all hold, else a note says it is recomputed. Each
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
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from genzoo.data.base import ImageData
from genzoo.errors import GenzooError
from genzoo.io import cache_root
from genzoo.metrics.features import FeatureNetwork
from genzoo.metrics.functional import RunningMoments
from genzoo.models.base import CanGenerate
from genzoo.train.checkpoint import print_note, tensors_sha256


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
    return cache_root() / "reference"


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

    def real_content_sha256(self) -> str | None:
        """sha256 of the real images the reference uses (uint8, in order, with their shape): what the cache is
        keyed on, so replaced images are never scored with the features of the old ones. None when the data
        holds no image tensor (folders read file by file are not cached)."""
        images = getattr(self.real_data, "images", None)
        if not isinstance(images, Tensor):
            return None
        return tensors_sha256({"images": images[self.real_indices().to(images.device)]})

    @cached_property
    def real(self) -> FeatureSet:
        labels = None if self.real_data.labels is None else self.real_data.labels[self.real_indices()].cpu()
        content = self.real_content_sha256() if self.use_cache else None
        if content is None:
            return self._extract_real(labels)
        key = {"images_sha256": content, **self.network.protocol, "pipeline": self.protocol.get("folder_resize")}
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        path = cache_dir() / f"{self.network.name}-{name}.safetensors"
        if path.is_file():
            try:
                return _read_cache(path, key, labels)
            except _Damaged as damage:
                print_note(f"the cached reference features {path} {damage}; recomputing them.")
        result = self._extract_real(labels)
        _write_cache(path, key, result, self.reference)
        return result

    def _extract_real(self, labels: Tensor | None) -> FeatureSet:
        result = extract(self.real_batches(), self.network, "features of real images", self.device)
        result.labels = labels
        return result

    @cached_property
    def fake(self) -> FeatureSet:
        if self.fake_batches is None:
            raise GenzooError("this evaluation has no generated images; give a run whose model generates or --fake DIR.")
        return extract(self.fake_batches(), self.network, "features of generated images", self.device)


class _Damaged(Exception):
    """A cache entry that cannot be trusted; the message says why (it follows the file name)."""


def _read_cache(path: Path, key: dict[str, Any], labels: Tensor | None) -> FeatureSet:
    """Features of a cache file whose checksum, key and features-vs-moments agreement all hold."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # noqa: BLE001  (a truncated or garbled file raises anything from the parser)
        raise _Damaged(f"cannot be read ({type(error).__name__})") from None
    if metadata.get("sha256") != tensors_sha256(tensors):
        raise _Damaged("do not match their checksum")
    if metadata.get("key") != json.dumps(key, sort_keys=True):
        raise _Damaged("belong to other images or another feature network")
    try:
        moments = RunningMoments.from_state({k[8:]: v for k, v in tensors.items() if k.startswith("moments.")})
    except GenzooError:
        raise _Damaged("hold malformed statistics") from None
    features, logits = tensors.get("features"), tensors.get("logits")
    if features is None or logits is None or features.dim() != 2 or len(logits) != len(features) \
            or moments.count != len(features) or not _moments_match(features, moments):
        raise _Damaged("hold features and statistics that disagree")
    return FeatureSet(features, logits, moments, labels)


def _moments_match(features: Tensor, moments: RunningMoments) -> bool:
    """Whether the mean and the variances (the scatter's diagonal) are those of the features, to rounding."""
    x = features.double()  # (N, D)
    mean = x.mean(dim=0)  # (D,)
    scatter_diagonal = (x - mean).square().sum(dim=0)  # (D,)
    scale = float(x.abs().max()) if x.numel() else 0.0
    return bool(torch.allclose(moments.mean, mean, rtol=1e-9, atol=1e-12 * (scale + 1))) and bool(torch.allclose(
        moments.scatter.diagonal(), scatter_diagonal, rtol=1e-9, atol=1e-12 * (scale + 1) ** 2 * len(x)))


def _write_cache(path: Path, key: dict[str, Any], result: FeatureSet, reference: dict[str, Any]) -> None:
    tensors = {"features": result.features.contiguous(), "logits": result.logits.contiguous(),
               **{f"moments.{k}": v for k, v in result.moments.state_dict().items()}}
    metadata = {"key": json.dumps(key, sort_keys=True), "sha256": tensors_sha256(tensors),
                "reference": json.dumps(reference, sort_keys=True)}
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(temporary), metadata=metadata)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)  # an unwritable cache only costs time


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

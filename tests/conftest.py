"""Shared test helpers: tiny configs for every family, on the `fake` dataset at 16 px."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import genzoo  # noqa: F401  (fills the registries)
from genzoo.config import RunConfig, build_config

# Every registered family needs an entry here; the contract test fails for one that has none.
TINY_MODELS: dict[str, dict[str, Any]] = {
    "autoencoder": {"latent_dim": 4, "width": 4},
    "vae": {"latent_dim": 4, "width": 4},
    "glo": {"latent_dim": 4, "width": 4, "encode_steps": 5},
    "swap": {"latent_dim": 4, "width": 4},
    "gan": {"latent_dim": 8, "generator_width": 4, "discriminator_width": 4},
    "classifier": {"width": 4},
    "dann": {"width": 4, "hidden": 8},
    "ddpm": {"width": 8, "channel_multipliers": [1, 2], "blocks_per_level": 1, "attention_resolutions": [8],
             "timesteps": 10, "sampling_steps": 5},
}


# data settings a family needs beyond the default fake images (two domains for the swap autoencoder)
TINY_DATA: dict[str, dict[str, Any]] = {"swap": {"domains": [0, 1]}, "dann": {"target": "fake"}}


def tiny_config(family: str, model: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                **train: Any) -> RunConfig:
    """A run of 2 steps of batch 8 on 64 fake 16 x 16 images; `train` overrides train.* keys."""
    return build_config({
        "family": family,
        "model": {**TINY_MODELS[family], **(model or {})},
        "data": {"name": "fake", "image_size": 16, "max_images": 64, **TINY_DATA.get(family, {}), **(data or {})},
        "train": {"steps": 2, "batch_size": 8, "log_every": 1, "sample_every": 1, "checkpoint_every": 1,
                  "num_preview": 4, "seed": 0, **train},
    })


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Reference statistics go to a per-test cache, never to the user's ~/.cache."""
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path_factory.mktemp("cache")))

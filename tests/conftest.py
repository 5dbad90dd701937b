"""Shared test helpers: tiny configs for every family, on the `fake` dataset at 16 px."""

from __future__ import annotations

from pathlib import Path
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
    "pix2pix": {"width": 4, "discriminator_width": 4},
    "cyclegan": {"width": 4, "discriminator_width": 4, "blocks": 1},
    "stargan": {"width": 4, "discriminator_width": 4, "blocks": 1, "discriminator_steps": 2},
    "pixelcnn": {"width": 4, "layers": 2, "first_kernel_size": 3},
    "char-lm": {"width": 8, "layers": 1, "heads": 2},
    # growing GANs: 4 x 4 for 2 steps, then 8 x 8 fades in (so steps 1 and 2 of the contract sample the same)
    "progan": {"latent_dim": 8, "width": 4, "max_width": 8, "fade_steps": 2, "stable_steps": 2},
    "stylegan": {"latent_dim": 8, "width": 4, "max_width": 8, "fade_steps": 2, "stable_steps": 2, "mapping_layers": 2,
                 "r1_every": 2},
    "chairs": {"hidden": 8, "width": 4},
    "nerf": {"depth": 2, "width": 8, "skip": 1, "samples": 4, "fine_samples": 4,
             "position_frequencies": 2, "direction_frequencies": 1},
    "autoencoder-kl": {"width": 4, "channel_multipliers": [1, 2], "downsampling": 2, "latent_channels": 2,
                       "adversarial_weight": 0.5, "discriminator_width": 4},
    "latent-diffusion": {"first_stage": None, "width": 8, "channel_multipliers": [1, 2], "blocks_per_level": 1,
                         "attention_resolutions": [8], "attention_heads": 1, "timesteps": 10, "sampling_steps": 5,
                         "text_width": 8, "text_depth": 1, "text_heads": 1},
    "gan-cls": {"latent_dim": 8, "text_dim": 8, "generator_width": 4, "discriminator_width": 4, "text_width": 8,
                "text_depth": 1, "text_heads": 1},
}

TINY_TEXT = Path(__file__).parent / "text" / "tiny.txt"  # 2,406 characters of plain English


# data settings a family needs beyond the default fake images (two domains; pairs of noisy and clean blobs; text)
TINY_DATA: dict[str, dict[str, Any]] = {
    "swap": {"domains": [0, 1]},
    "cyclegan": {"domains": [0, 1]},
    "pix2pix": {"task": "denoise"},
    "pixelcnn": {"image_size": 8},  # sampled pixel by pixel: 64 pixels, not 256
    "char-lm": {"name": "text", "root": str(TINY_TEXT), "image_size": None, "sequence_length": 16},
    "chairs": {"name": "chairs"},
    "nerf": {"name": "chair-views", "max_images": 4},
    "latent-diffusion": {"name": "shapes"},
    "gan-cls": {"name": "shapes"},
    "dann": {"target": "fake"},
}


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


def pytest_configure(config) -> None:  # noqa: ANN001
    """One torch thread per test process: `make test` runs two pytest-xdist workers on two cores, and tiny
    networks gain nothing from more threads (they wait on each other on a busy machine)."""
    torch.set_num_threads(1)


def single_thread():  # noqa: ANN201
    """Torch on one thread for a while (the suite already runs on one: `pytest_configure`; kept for runs of
    single files with other settings)."""
    from genzoo.nn.decoding import sequential_cpu

    return sequential_cpu(torch.device("cpu"))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Reference statistics go to a per-test cache, never to the user's ~/.cache."""
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def tiny_first_stage(tmp_path_factory):
    """A tiny autoencoder-kl run (2 steps, with EMA weights) on 16 x 16 shapes: the first stage of latent-diffusion tests."""
    from genzoo.train.trainer import Trainer

    out = tmp_path_factory.mktemp("first-stage") / "autoencoder-kl"
    with single_thread():
        return Trainer(tiny_config("autoencoder-kl", data={"name": "shapes"}, ema_decay=0.5), out, progress=False).fit().path


@pytest.fixture(scope="session")
def tiny_text_runs(tmp_path_factory, tiny_first_stage):
    """Tiny finished text-to-image runs (2 steps, no report): latent-diffusion on the tiny first stage, gan-cls."""
    from genzoo.train.trainer import Trainer

    root = tmp_path_factory.mktemp("text-runs")
    configs = {"latent-diffusion": tiny_config("latent-diffusion", model={"first_stage": str(tiny_first_stage)}),
               "gan-cls": tiny_config("gan-cls"), "autoencoder-kl": tiny_config("autoencoder-kl", data={"name": "shapes"})}
    with single_thread():
        return {name: Trainer(config, root / name, progress=False).fit().path for name, config in configs.items()}

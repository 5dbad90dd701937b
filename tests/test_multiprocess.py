"""Several processes: `accelerate launch` with 2 CPU processes (gloo) trains the same parameters as one
process with the same global batch, and a 2-process run stops and resumes (`slow`: 2-3 launches).

Batch norm keeps per-process statistics (as DDP does without SyncBatchNorm, which PyTorch runs on
GPUs only), so with different images per process a batch-norm model legitimately differs from a
one-process run. Every genzoo image family has batch norm in its DCGAN stacks; the comparison
therefore trains on identical images, where the per-process statistics equal the global ones, and
the sharding of the data is checked on its own below. The running variances still differ by their
unbiased correction n / (n - 1), which counts per-process values: buffers are not compared.

Note: `accelerate launch --cpu --num_processes 2` starts ONE process; on a machine without a GPU,
`--multi_gpu --num_processes 2` starts two CPU processes on gloo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_MODELS
from PIL import Image

from genzoo.config import DataConfig, load_config
from genzoo.data import BatchStream, build_dataset
from genzoo.train.checkpoint import RunFolder
from genzoo.api import make_trainer

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "genzoo"]


def same_images(folder: Path, n: int = 16) -> Path:
    folder.mkdir()
    image = (np.random.default_rng(0).random((16, 16)) * 255).astype(np.uint8)
    for index in range(n):
        Image.fromarray(image, "L").save(folder / f"{index:02d}.png")
    return folder


def overrides(family: str, images: Path, steps: int, extra: list[str] = ()) -> list[str]:
    model = [f"model.{key}={json.dumps(value)}" for key, value in TINY_MODELS[family].items()]
    return [*model, "data.name=image-folder", f"data.root={images}", "data.image_size=16", "train.batch_size=8",
            "train.log_every=1", "train.checkpoint_every=2", "train.sample_every=100", "train.deterministic=true",
            "train.mixed_precision=no", "train.device=cpu", f"train.steps={steps}", *extra]


def launch(*args: str, progress: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run([*LAUNCH, *args, *([] if progress else ["--no-progress"])], env=ENV, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def one_process(family: str, items: list[str], out: Path) -> RunFolder:
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)  # as the launched processes (OMP_NUM_THREADS=1)
    try:
        return make_trainer(load_config(family, items), out, progress=False).fit()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def parameters(run: RunFolder) -> dict[str, torch.Tensor]:
    from genzoo.loading import load

    return dict(load(run.path, ema=False).named_parameters())


def test_processes_split_the_global_batch():
    data = build_dataset(DataConfig(name="fake", image_size=16, max_images=64))
    whole = BatchStream(data, 8, seed=3)
    halves = [BatchStream(data, 8, seed=3, rank=rank, world_size=2) for rank in range(2)]
    for _ in range(10):  # over epoch boundaries too
        expected = whole.next()["image"]
        got = torch.cat([half.next()["image"] for half in halves])
        assert torch.equal(expected, got)


def compare_with_one_process(run: Path, images: Path, steps: int, folder: Path) -> None:
    single = one_process("autoencoder", overrides("autoencoder", images, steps), folder / "one")
    expected, got = parameters(single), parameters(RunFolder(run))
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-6, msg=key)


def test_two_processes_train_as_one_process(tmp_path):
    images = same_images(tmp_path / "images")
    result = launch("train", "autoencoder", *overrides("autoencoder", images, 6), "--out", str(tmp_path / "two"),
                    progress=True)  # not a terminal: the progress is printed as one line per log record
    state = torch.load(tmp_path / "two" / "training_state.pt", weights_only=True)
    assert state["step"] == 6 and len(state["rng_cpu"]) == 2  # two processes ran, each random state is kept
    printed = (result.stdout + result.stderr).splitlines()
    # only the main process prints: the picked data settings, each log record and the summary appear once
    for phrase in ("run folder:", "step 1/6", "step 6/6", "report:"):
        assert sum(phrase in line for line in printed) == 1, (phrase, printed)
    compare_with_one_process(tmp_path / "two", images, 6, tmp_path)


def test_two_processes_train_a_gan_with_ema_as_one_process(tmp_path):
    """Two phases that each step their own parameter group (requires_grad toggled) and an EMA: every
    phase's gradients are averaged over the processes. Each process normally draws its own noise z,
    so runs differ; with the same images and the noise shared (train.process_noise=shared) both
    processes compute the same gradients, and their average is exactly what one process computes
    with half the global batch."""
    images = same_images(tmp_path / "images")
    gan = ["train.ema_decay=0.9", "train.process_noise=shared"]
    launch("train", "gan", *overrides("gan", images, 4, gan), "--out", str(tmp_path / "two"))
    single = one_process("gan", overrides("gan", images, 4, [*gan, "train.batch_size=4"]), tmp_path / "one")
    expected, got = RunFolder(single.path).read_weights(single.weights)[0], RunFolder(tmp_path / "two").read_weights(
        RunFolder(tmp_path / "two").weights)[0]
    assert any(key.startswith("ema.") for key in got) and expected.keys() == got.keys()
    for key in expected:
        if "running_" not in key and "num_batches" not in key:  # batch-norm buffers are per process (see above)
            torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-6, msg=key)


@pytest.mark.slow
def test_a_two_process_run_resumes_as_one_process(tmp_path):
    images = same_images(tmp_path / "images")
    launch("train", "autoencoder", *overrides("autoencoder", images, 3), "--out", str(tmp_path / "two"))
    launch("resume", str(tmp_path / "two"), "--steps", "6")
    assert torch.load(tmp_path / "two" / "training_state.pt", weights_only=True)["step"] == 6
    compare_with_one_process(tmp_path / "two", images, 6, tmp_path)


@pytest.mark.slow
def test_a_two_process_vae_resumes_exactly(tmp_path):
    """Per-process random state (the VAE's noise) survives a resume: stopped and resumed equals straight."""
    images = same_images(tmp_path / "images")
    launch("train", "vae", *overrides("vae", images, 6), "--out", str(tmp_path / "straight"))
    launch("train", "vae", *overrides("vae", images, 3), "--out", str(tmp_path / "resumed"))
    launch("resume", str(tmp_path / "resumed"), "--steps", "6")
    straight, resumed = (RunFolder(tmp_path / name) for name in ("straight", "resumed"))
    expected, _ = straight.read_weights(straight.weights)
    got, _ = resumed.read_weights(resumed.weights)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key

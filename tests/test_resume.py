"""A run stopped and resumed ends with the same weights, bit for bit, as one run straight through."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_config
from safetensors.torch import load_file

from genzoo.api import make_trainer


@pytest.mark.parametrize("family, ema", [("gan", 0.9), ("vae", None), ("autoencoder", 0.5), ("pix2pix", None),
                                         ("stargan", 0.5), ("pixelcnn", 0.5), ("char-lm", None),
                                         ("chairs", 0.5), ("nerf", None), ("dann", None), ("calo-ddpm", 0.5)])
def test_stop_and_resume_equals_straight_run(family, ema, tmp_path):
    """Runs of 2, 4 and 6 steps: a schedule over the run's length would differ between them, so StarGAN's
    decay and DANN's lambda and rate schedules are off here (schedules across a stop and resume: test_trainer.py; cyclegan, with its history pool and
    decay: test_translation.py)."""
    extra = {"ema_decay": ema, "checkpoint_every": 100}
    model = {"stargan": {"decay_from": 1.0}, "dann": {"grl_lambda": 1.0, "lr_decay": False}}.get(family)
    data = None
    if family == "calo-ddpm":  # the calo-ddpm preset's model (conditional DDPM) on simulated calorimeter showers
        family, model, data = "ddpm", {"conditional": True}, {"name": "calo", "max_images": 40}
    straight = make_trainer(tiny_config(family, model, data, steps=6, **extra), tmp_path / "straight", progress=False).fit()
    make_trainer(tiny_config(family, model, data, steps=2, **extra), tmp_path / "resumed", progress=False).fit()
    make_trainer(tiny_config(family, model, data, steps=4, **extra), tmp_path / "resumed", resume=True, progress=False).fit()
    resumed = make_trainer(tiny_config(family, model, data, steps=6, **extra), tmp_path / "resumed", resume=True,
                           progress=False).fit()

    expected, got = load_file(str(straight.weights)), load_file(str(resumed.weights))
    assert expected.keys() == got.keys() and any(k.startswith("ema.") for k in got) == (ema is not None)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    state_a = torch.load(straight.state, weights_only=True)
    state_b = torch.load(resumed.state, weights_only=True)
    assert state_a["step"] == state_b["step"] == 6 and state_a["data_position"] == state_b["data_position"]
    steps = [json.loads(line)["step"] for line in resumed.log.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_drops_log_lines_written_after_the_checkpoint(tmp_path):
    run = make_trainer(tiny_config("vae", steps=2), tmp_path / "run", progress=False).fit()
    with open(run.log, "a") as handle:  # what a run that crashed after its checkpoint would have logged
        handle.write(json.dumps({"step": 3, "main/total": 1.0}) + "\n")
    make_trainer(tiny_config("vae", steps=4), tmp_path / "run", resume=True, progress=False).fit()
    assert [json.loads(line)["step"] for line in run.log.read_text().splitlines()] == [1, 2, 3, 4]

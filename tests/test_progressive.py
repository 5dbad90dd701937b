"""ProGAN's building blocks against known answers, fade-in continuity, the growth schedule, padding, and a
run stopped and resumed across growth stages that ends bit for bit like one straight through."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_MODELS, tiny_config
from safetensors.torch import load_file

from genzoo.config import DataConfig
from genzoo.data import build_dataset
from genzoo.data.info import DataInfo
from genzoo.errors import ConfigError, DataError
from genzoo.nn.progressive import (
    EqualConv2d,
    EqualLinear,
    Growth,
    fade_reals,
    minibatch_stddev,
    pixel_norm,
    upsample,
)
from genzoo.registry import MODELS
from genzoo.report.html import _stages
from genzoo.train.trainer import Trainer


def tiny_model(family: str, size: int = 16, **model):
    family_class = MODELS.get(family)
    return family_class(family_class.Config(**{**TINY_MODELS[family], **model}), DataInfo(channels=1, image_size=size))


# ----------------------------------------------------------------------------- known answers


def test_growth_schedule_known_answer():
    growth = Growth(start=4, final=16, fade_steps=2, stable_steps=3)
    # 4 x 4 for 3 steps; 8 x 8 fades in over 2 (alpha 0, 1/2), stable 3; 16 x 16 fades in, then stays
    expected = [(0, 1.0)] * 3 + [(1, 0.0), (1, 0.5)] + [(1, 1.0)] * 3 + [(2, 0.0), (2, 0.5)] + [(2, 1.0)] * 5
    assert [growth.at(step) for step in range(len(expected))] == expected
    assert growth.at(10**9) == (2, 1.0) and growth.resolution(9) == 16
    assert Growth(4, 16, fade_steps=0, stable_steps=1).at(1) == (1, 1.0)  # no fade: straight to the next stage
    assert Growth(8, 8, 5, 5).at(100) == (0, 1.0)  # nothing to grow


def test_equalised_layers_start_at_unit_variance_and_scale_at_run_time():
    torch.manual_seed(0)
    conv, linear = EqualConv2d(64, 64, 3), EqualLinear(512, 256, gain=1.0)
    for layer, fan_in, gain in ((conv, 64 * 9, math.sqrt(2)), (linear, 512, 1.0)):
        assert abs(layer.weight.std().item() - 1) < 0.02 and abs(layer.weight.mean().item()) < 0.02  # N(0, 1)
        assert layer.scale == pytest.approx(gain / math.sqrt(fan_in))  # He's constant, applied at run time
        assert torch.count_nonzero(layer.bias) == 0
    x = torch.randn(4, 64, 8, 8)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1))
    with torch.no_grad():
        conv.weight.mul_(2)  # the stored weight doubles: the output doubles, the scale stays
    assert torch.allclose(conv(x), 2 * F.conv2d(x, conv.weight / 2 * conv.scale, padding=1), atol=1e-5)
    y = linear(torch.randn(4096, 512))  # unit-variance input, gain 1: unit-variance output
    assert abs(y.var().item() - 1) < 0.1


def test_pixel_norm_known_answer():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])  # (B, C)
    assert torch.allclose(pixel_norm(x), x / math.sqrt(12.5))  # (9 + 16) / 2 = 12.5; a zero vector stays 0
    image = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1).expand(1, 2, 2, 3)  # every pixel's channels: (3, 4)
    assert torch.allclose(pixel_norm(image), image / math.sqrt(12.5))  # mean of squares over channels = 12.5


def test_minibatch_stddev_known_answer():
    x = torch.tensor([1.0, 3.0, 5.0, 11.0]).view(4, 1, 1, 1)
    whole = minibatch_stddev(x, group_size=4)  # one group: deviations -4, -2, 0, 6 -> var 14
    assert whole.shape == (4, 2, 1, 1) and torch.equal(whole[:, :1], x)
    assert torch.allclose(whole[:, 1].flatten(), torch.full((4,), math.sqrt(14.0)))
    pairs = minibatch_stddev(x, group_size=2)  # groups (x0, x2) = (1, 5) and (x1, x3) = (3, 11): std 2 and 4
    assert torch.allclose(pairs[:, 1].flatten(), torch.tensor([2.0, 4.0, 2.0, 4.0]))
    features = torch.tensor([[0.0, 0.0], [2.0, 6.0]]).view(2, 2, 1, 1)  # per feature over the pair: std 1 and 3
    assert torch.allclose(minibatch_stddev(features, 2)[:, 2].flatten(), torch.full((2,), 2.0))  # averaged
    assert minibatch_stddev(torch.randn(6, 3, 4, 4), group_size=4).shape == (6, 4, 4, 4)  # 6 = 2 groups of 3


# ----------------------------------------------------------------------------- fade-in


@pytest.mark.parametrize("family", ["progan", "stylegan"])
def test_fade_in_is_continuous_across_a_stage_boundary(family):
    """Stage k at alpha = 1 equals stage k + 1 at alpha = 0 for the same weights (Karras et al. 2018, Fig. 2)."""
    model = tiny_model(family).eval()
    z = torch.randn(5, model.config.latent_dim)
    synthesis = model.generator if family == "progan" else model.generator.synthesis
    code = z if family == "progan" else model.map_latent(z)[:, None].expand(-1, model.num_ws, -1)
    extra = {} if family == "progan" else {"noise": "const"}
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        for k in (0, 1):
            before = synthesis(code, k, 1.0, **extra)  # (5, 1, r, r)
            after = synthesis(code, k + 1, 0.0, **extra)  # (5, 1, 2r, 2r)
            assert torch.equal(upsample(before), after), k  # bit for bit
            assert not torch.equal(after, synthesis(code, k + 1, 0.5, **extra))  # the new block does take over
            small = F.avg_pool2d(x, 16 // (4 * 2**k))
            d_before = model.discriminator(small, k, 1.0)
            d_after = model.discriminator(upsample(small), k + 1, 0.0)
            assert torch.allclose(d_before, d_after, atol=1e-5), k
            reals_before = fade_reals(x, 4 * 2**k, 1.0)
            assert torch.allclose(upsample(reals_before), fade_reals(x, 8 * 2**k, 0.0), atol=1e-6)
    # what the model samples at the last step of a stage and the first of the next is the same image
    generator = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    model.schedule(1, 10)
    last_of_4 = model.generate(3, generator=generator())
    model.schedule(2, 10)
    assert model.resolution == 8 and model.alpha == 0.0
    assert torch.equal(last_of_4, model.generate(3, generator=generator()))


def test_resolution_must_be_a_power_of_two_and_data_pads_to_one():
    with pytest.raises(ConfigError, match="power of two.*data.pad_to"):
        tiny_model("progan", size=28)
    with pytest.raises(ConfigError, match="start_resolution"):
        tiny_model("stylegan", size=16, start_resolution=32)
    plain = build_dataset(DataConfig(name="fake", image_size=12, max_images=4))
    padded = build_dataset(DataConfig(name="fake", image_size=12, max_images=4, pad_to=16))
    assert padded.images.shape == (4, 1, 16, 16) and padded.info.image_size == 16
    assert torch.equal(padded.images[:, :, 2:14, 2:14], plain.images)  # centred
    assert padded.images[:, :, :2].eq(0).all() and padded.images[:, :, :, 14:].eq(0).all()  # black: -1 in [-1, 1]
    with pytest.raises(DataError, match="data.pad_to=8"):
        build_dataset(DataConfig(name="fake", image_size=12, max_images=4, pad_to=8))


def test_progan_losses_have_the_gradient_penalty_and_the_drift_term():
    model = tiny_model("progan")
    model.schedule(3, 10)  # 8 x 8 fading in: reals downsampled and faded, fakes at 8 x 8
    losses = model("discriminator", {"image": torch.rand(8, 1, 16, 16) * 2 - 1})
    assert {"gradient_penalty", "drift", "score_gap"} <= set(losses)
    expected = (losses["loss_d_real"] + losses["loss_d_fake"] + 10 * losses["gradient_penalty"] + 0.001 * losses["drift"])
    assert torch.allclose(losses["total"], expected)


# ----------------------------------------------------------------------------- exact resume across growth


@pytest.mark.parametrize("family", ["progan", "stylegan"])
def test_stop_and_resume_across_growth_stages_equals_a_straight_run(family, tmp_path):
    """Stages of 2 steps at 16 px: 4 x 4 (steps 1-2), 8 x 8 fades in (3-4), stable (5-6), 16 x 16 fades in (7-8).
    Stopped at step 3 (mid-fade) and at 6 (the last step of a stage), resumed to 8."""
    extra = {"ema_decay": 0.9, "checkpoint_every": 100, "sample_every": 100}  # (no callbacks: only the training counts)
    straight = Trainer(tiny_config(family, steps=8, **extra), tmp_path / "straight", progress=False).fit()
    for steps in (3, 6, 8):
        trainer = Trainer(tiny_config(family, steps=steps, **extra), tmp_path / "resumed", resume=steps > 3, progress=False)
        trainer.fit()
        assert trainer.ema.model.resolution == trainer.model.resolution  # the average samples at the same stage
    expected, got = load_file(str(straight.weights)), load_file(str(trainer.run.weights))
    assert expected.keys() == got.keys() and any(k.startswith("ema.") for k in got)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    state_a, state_b = (torch.load(run.state, weights_only=True) for run in (straight, trainer.run))
    for name, optimizer in state_a["optimizers"].items():
        for index, moments in optimizer["state"].items():
            for key, value in moments.items():
                assert torch.equal(value, state_b["optimizers"][name]["state"][index][key]), (name, index, key)
    records = [json.loads(line) for line in trainer.run.log.read_text().splitlines()]
    assert [(r["step"], r["schedule/resolution"], r["schedule/alpha"]) for r in records] == [
        (1, 4, 1.0), (2, 4, 1.0), (3, 8, 0.0), (4, 8, 0.5), (5, 8, 1.0), (6, 8, 1.0), (7, 16, 0.0), (8, 16, 0.5)]


def test_the_report_shows_the_last_sample_grid_of_each_stage(tmp_path):
    grids = [tmp_path / f"step-{step:06d}.png" for step in (100, 200, 300, 400, 500)]
    records = [{"step": s, "schedule/resolution": r} for s, r in ((100, 4.0), (200, 4.0), (300, 8.0), (500, 16.0))]
    assert _stages(grids, records) == {grids[1]: "4 x 4, step 200", grids[3]: "8 x 8, step 400",
                                       grids[4]: "16 x 16, step 500"}
    assert _stages(grids, [{"step": 100, "main/total": 1.0}]) == {}  # not a growing model

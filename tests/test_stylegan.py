"""StyleGAN: AdaIN, style mixing, the tracked mean w and truncation, lazy R1 with the Adam correction, the
w-space pictures and commands, and the perceptual path length."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import TINY_MODELS, tiny_config
from PIL import Image
from test_cli import genzoo

from genzoo.data.info import DataInfo
from genzoo.errors import GenzooError
from genzoo.metrics.evaluate import evaluate
from genzoo.metrics.features import load_features
from genzoo.metrics.ppl import normalised_distance, path_lengths, trimmed_mean
from genzoo.models.stylegan import StyleGAN, adain
from genzoo.registry import MODELS
from genzoo.style_space import parse_layers, psi_sweep, style_groups, style_mixing_grid
from genzoo.train.trainer import Trainer


def tiny_stylegan(size: int = 16, **model) -> StyleGAN:
    return StyleGAN(StyleGAN.Config(**{**TINY_MODELS["stylegan"], **model}), DataInfo(channels=1, image_size=size))


def test_adain_known_answer():
    x = torch.tensor([0.0, 2.0, 4.0, 6.0, 1.0, 1.0, 1.0, 1.0]).view(1, 2, 2, 2)  # channel 0: mean 3, var 5; channel 1: flat
    out = adain(x, scale=torch.tensor([[2.0, 3.0]]), shift=torch.tensor([[1.0, -1.0]]))
    expected_0 = 2 * (torch.tensor([0.0, 2.0, 4.0, 6.0]) - 3) / math.sqrt(5) + 1
    assert torch.allclose(out[0, 0].flatten(), expected_0, atol=1e-6)
    assert torch.allclose(out[0, 1], torch.full((2, 2), -1.0))  # no variance: only the shift is left


def test_style_mixing_takes_the_layers_after_a_crossover_from_a_second_code():
    torch.manual_seed(0)
    model = tiny_stylegan(style_mixing=1.0)
    model.schedule(10, 10)  # full size: 6 style layers in use
    seen = []
    model.generator.synthesis.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    for _ in range(8):
        model.fakes(4)
    for ws in seen:  # (B, L, D)
        same_as_first = (ws == ws[:, :1]).all(-1).all(0)  # (L,): layers that take the first code
        cutoff = int(same_as_first.long().argmin())  # the first layer that does not
        assert 1 <= cutoff < model.active_ws and same_as_first[:cutoff].all() and not same_as_first[cutoff:].any()
        assert (ws[:, cutoff:] == ws[:, -1:]).all()  # the rest all take the second
    seen.clear()
    model.config = model.config.model_copy(update={"style_mixing": 0.0})
    model.fakes(4)
    assert (seen[0] == seen[0][:, :1]).all()  # no mixing: one w for every layer


def test_the_generator_phase_tracks_the_mean_w():
    torch.manual_seed(3)
    model = tiny_stylegan(style_mixing=0.0)
    model.fakes(6)  # a discriminator-phase batch leaves it alone
    assert torch.count_nonzero(model.generator.w_avg) == 0
    torch.manual_seed(3)
    model.fakes(6, generator_phase=True)
    torch.manual_seed(3)
    w = model.map_latent(torch.randn(6, model.config.latent_dim))
    assert torch.allclose(model.generator.w_avg, 0.005 * w.mean(0))  # lerp(mean w, w_avg = 0, beta 0.995)


def test_truncation_psi():
    model = tiny_stylegan().eval()
    with torch.no_grad():
        model.generator.w_avg.normal_()
    generator = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(model.generate(3, generator=generator(), psi=1.0), model.generate(3, generator=generator()))
    sweep = psi_sweep(model, rows=3, psis=(0.0, 1.0), generator=generator()).view(3, 2, 1, 16, 16)
    mean_image = model.decode_w(model.generator.w_avg[None])
    assert torch.allclose(sweep[:, 0], mean_image.expand(3, -1, -1, -1), atol=1e-6)  # psi = 0: the mean image
    assert not torch.allclose(sweep[:, 1], sweep[:1, 1])  # psi = 1: the codes themselves, all different
    with pytest.raises(GenzooError, match="psi must be 0 or more"):
        model.generate(2, psi=-0.5)


def test_style_mixing_grid_and_groups():
    model = tiny_stylegan(size=32, width=2, max_width=4).eval()
    model.schedule(10**6, 10**6)  # fully grown
    assert style_groups(model) == {"coarse (4-8 px)": [0, 1, 2, 3], "middle (16 px)": [4, 5], "fine (32 px)": [6, 7]}
    assert list(style_groups(tiny_stylegan(size=64, width=1, max_width=2)).values())[0] == [0, 1]  # not grown yet
    big = tiny_stylegan(size=64, width=1, max_width=2)
    big.schedule(10**6, 10**6)
    assert style_groups(big) == {"coarse (4-8 px)": [0, 1, 2, 3], "middle (16-32 px)": [4, 5, 6, 7], "fine (64 px)": [8, 9]}
    images, columns, blocks = style_mixing_grid(model, rows=2, columns=3, generator=torch.Generator().manual_seed(0))
    assert columns == 4 and len(blocks) == 3 and images.shape == ((1 + 3 * 2) * 4, 1, 32, 32)
    grid = images.view(7, 4, 1, 32, 32)
    assert (grid[0, 0] == 1).all()  # the blank corner
    every = list(range(model.active_ws))  # all styles from B: each cell is B's image
    images, _, _ = style_mixing_grid(model, rows=2, columns=3, layers=every, generator=torch.Generator().manual_seed(0))
    grid = images.view(3, 4, 1, 32, 32)
    for row in (1, 2):
        for column in (1, 2, 3):
            assert torch.allclose(grid[row, column], grid[row, 0], atol=1e-6)
    assert parse_layers("0-2,5", model) == [0, 1, 2, 5]
    with pytest.raises(GenzooError, match="style layer 8 is beyond this network's layers 0-7"):
        parse_layers("6-8", model)


def test_lazy_r1_runs_every_k_steps_and_is_logged_as_its_own_mean(tmp_path):
    assert [p.every for p in tiny_stylegan(r1_every=16).phases if p.name == "r1"] == [16]  # the default cadence
    config = tiny_config("stylegan", steps=4, sample_every=100, checkpoint_every=100)  # r1_every = 2 (tiny)
    every_step = Trainer(config, tmp_path / "a", progress=False).fit()
    records = [json.loads(line) for line in every_step.log.read_text().splitlines()]
    assert ["r1/r1_penalty" in r for r in records] == [False, True, False, True]  # steps 2 and 4
    for record in records[1::2]:
        assert record["r1/total"] == pytest.approx(10 / 2 * 2 * record["r1/r1_penalty"])  # gamma / 2 * R1 * k
    # (an every-k phase logged as the mean of the steps it ran, over a log interval: test_trainer.py)


def test_the_lazy_regularisation_correction_is_in_the_optimizer_state(tmp_path):
    config = tiny_config("stylegan", steps=1, lr=0.002, betas=[0.5, 0.99])
    trainer = Trainer(config, tmp_path / "run", progress=False)
    optimizers = trainer.optimizers
    optimizers.set_rates(1.0, trainer.model.schedule(0, 1))  # what the trainer does before each step
    c = 2 / 3  # k / (k + 1), k = r1_every = 2
    (discriminator,) = optimizers["discriminator"].param_groups
    assert discriminator["lr"] == pytest.approx(0.002 * c)
    assert discriminator["betas"] == pytest.approx((0.5**c, 0.99**c))
    synthesis, mapping = optimizers["generator"].param_groups
    assert synthesis["betas"] == (0.5, 0.99) and synthesis["lr"] == pytest.approx(0.002)
    assert mapping["lr"] == pytest.approx(0.002 * 0.01)  # the mapping network learns 100 x slower
    progan = Trainer(tiny_config("progan", steps=1, lr=0.002), tmp_path / "progan", progress=False).optimizers
    progan.set_rates(1.0, trainer.model.schedule(0, 1))
    assert progan["discriminator"].param_groups[0]["lr"] == pytest.approx(0.002)  # no lazy regulariser: no correction
    assert progan["discriminator"].param_groups[0]["betas"] == (0.5, 0.999)


# ----------------------------------------------------------------------------- perceptual path length


def test_perceptual_distance_and_trimmed_mean_known_answers():
    a = [torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0]]).view(1, 2, 1, 1).expand(1, 2, 2, 2)]
    b = [torch.tensor([[4.0, 3.0]]), torch.tensor([[0.0, 2.0]]).view(1, 2, 1, 1).expand(1, 2, 2, 2)]
    # layer 1: unit vectors (0.6, 0.8) and (0.8, 0.6): squared distance 0.08; layer 2: (1, 0) vs (0, 1) at each pixel: 2
    assert torch.allclose(normalised_distance(a, b), torch.tensor([0.08 + 2.0]), atol=1e-6)
    values = torch.arange(0.0, 1000.0)
    values[0], values[-1] = -1e6, 1e6  # outliers
    assert trimmed_mean(values) == pytest.approx(499.5)  # 'lower' 1st percentile: index 9; 'higher' 99th: index 990
    noisy = torch.randn(537, generator=torch.Generator().manual_seed(0)) ** 3
    low, high = np.percentile(noisy.numpy(), 1, method="lower"), np.percentile(noisy.numpy(), 99, method="higher")
    assert trimmed_mean(noisy) == pytest.approx(noisy.numpy()[(noisy.numpy() >= low) & (noisy.numpy() <= high)].mean())


def test_path_length_is_zero_for_a_constant_generator_and_does_not_depend_on_epsilon():
    torch.manual_seed(0)
    network = load_features("fmnist")
    model = tiny_stylegan().eval()
    model.schedule(10, 10)
    short = path_lengths(model, network, 16, "w", 1e-4, generator=torch.Generator().manual_seed(0))
    longer = path_lengths(model, network, 16, "w", 1e-3, generator=torch.Generator().manual_seed(0))
    assert short.mean() > 0 and torch.allclose(short.mean(), longer.mean(), rtol=0.05)  # d ~ eps^2 |J v|^2
    with torch.no_grad():
        model.generator.mapping.layers[-1].weight.zero_()  # w no longer depends on z: every image is the same
    for space in ("z", "w"):
        assert path_lengths(model, network, 8, space, generator=torch.Generator().manual_seed(0)).abs().max() == 0


def test_the_ppl_metric_states_its_protocol():
    model = tiny_stylegan().eval()
    scores = evaluate(model, ["ppl"], data="fake", num_samples=8, num_real=8, use_cache=False)
    assert [s.name for s in scores] == ["ppl-z-fmnist", "ppl-w-fmnist"]
    for score, space in zip(scores, "zw"):
        assert math.isfinite(score.value) and score.value >= 0
        protocol = score.protocol
        assert protocol["space"] == space and protocol["epsilon"] == 1e-4 and protocol["pairs"] == 8
        assert protocol["extractor"] == "fmnist" and "LPIPS" in protocol["distance"]
        assert protocol["sampler"]["resolution"] == 4  # an untrained model samples its first stage
    ddpm = MODELS.get("ddpm")(MODELS.get("ddpm").Config(**TINY_MODELS["ddpm"]), DataInfo(channels=1, image_size=16))
    with pytest.raises(GenzooError, match="PPL walks a latent space"):  # generates, but from no latent space
        evaluate(ddpm, ["ppl"], data="fake", num_samples=8, num_real=8, use_cache=False)


# ----------------------------------------------------------------------------- the commands


def test_latent_commands_draw_stylegan_grids(tmp_path, capsys):
    run = tmp_path / "run"
    model = [f"model.{k}={json.dumps(v)}" for k, v in TINY_MODELS["stylegan"].items()]
    code, _, err = genzoo(capsys, "train", "stylegan", *model, "data.name=fake", "data.image_size=16", "data.max_images=64",
                          "data.pad_to=null", "train.steps=3", "train.batch_size=8", "--out", run, "--no-progress")
    assert code == 0, err
    commands = {
        "mix.png": ["latent", "mix", run, "--rows", "2", "--columns", "3"],
        "layers.png": ["latent", "mix", run, "--layers", "0-1", "--psi", "0.7"],
        "psi.png": ["latent", "psi", run, "--values", "0,0.5,1"],
        "walk-w.png": ["latent", "interpolate", run, "--space", "w", "--rows", "2", "--steps", "3"],
        "samples.png": ["sample", run, "-n", "4", "--psi", "0.7"],
    }
    for name, command in commands.items():
        code, out, err = genzoo(capsys, *command, "-o", tmp_path / name)
        assert code == 0, (name, err)
        assert Image.open(tmp_path / name).size[0] > 16
    # grown to 8 x 8 after 3 steps: two groups (4 px, 8 px): (1 + 3) x (1 + 2 blocks x 2 rows) cells of 16 + 1 px
    assert Image.open(tmp_path / "mix.png").size == (4 * 17 + 1, 5 * 17 + 1)
    assert "linear (lerp) interpolations in w" in genzoo(capsys, *commands["walk-w.png"], "-o", tmp_path / "w.png")[1]
    pictures = {p.name for p in (run / "pictures").iterdir()}
    assert {"style-mixing.png", "psi.png", "interpolation-w.png", "samples.png"} <= pictures
    assert "Samples per stage" in (run / "report.html").read_text()

"""The GAN family beyond the contract: objectives' training rules, conditioning, truncation, refusals."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from genzoo.errors import GenzooError
from genzoo.registry import ADVERSARIAL_LOSSES
from genzoo.api import make_trainer


def _trainer(tmp_path, steps=2, **model):
    return make_trainer(tiny_config("gan", model=model, steps=steps), tmp_path / "run", progress=False)


def test_wgan_clips_the_critic_and_takes_five_critic_steps(tmp_path):
    trainer = _trainer(tmp_path, objective="wgan")
    assert [(p.name, p.repeats) for p in trainer.model.phases] == [("discriminator", 5), ("generator", 1)]
    trainer.fit()
    assert max(p.abs().max().item() for p in trainer.model.discriminator.parameters()) <= 0.01 + 1e-7
    assert trainer.stream.position == 2 * 5  # a fresh real batch per critic step


def test_wgan_gp_logs_a_finite_penalty_and_drops_batchnorm(tmp_path):
    trainer = _trainer(tmp_path, objective="wgan-gp")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in trainer.model.discriminator.modules())
    sums = {}
    trainer.train_step(sums)
    assert torch.isfinite(sums["discriminator/gradient_penalty"]) and "discriminator/score_gap" in sums


@pytest.mark.parametrize("objective", ADVERSARIAL_LOSSES.names())
def test_every_objective_trains(tmp_path, objective):
    trainer = _trainer(tmp_path, objective=objective)
    sums = {}
    trainer.train_step(sums)
    assert all(torch.isfinite(v) for v in sums.values())


@pytest.mark.parametrize("conditional", ["cgan", "acgan"])
def test_the_label_changes_the_sample(tmp_path, conditional):
    trainer = _trainer(tmp_path, conditional=conditional)
    trainer.fit()
    model = trainer.model.eval()
    z = torch.randn(4, model.config.latent_dim)
    zeros, ones = model.generate(4, labels=torch.zeros(4, dtype=torch.long), z=z), model.generate(4, labels=torch.ones(4, dtype=torch.long), z=z)
    assert not torch.allclose(zeros, ones)
    assert torch.equal(zeros, model.generate(4, labels=torch.zeros(4, dtype=torch.long), z=z))
    with pytest.raises(GenzooError, match="class indices"):
        model.generate(4, labels=torch.tensor([0, 1, 2, 5]))  # the fake dataset has 2 classes
    if conditional == "acgan":
        scores, classes = model.discriminator(zeros, torch.zeros(4, dtype=torch.long))
        assert scores.shape == (4, 1) and classes.shape == (4, 2)


def test_projection_discriminator_uses_the_label(tmp_path):
    model = _trainer(tmp_path, conditional="cgan").model.eval()
    x = torch.randn(3, 1, 16, 16)
    first = model.discriminator(x, torch.zeros(3, dtype=torch.long))[0]
    second = model.discriminator(x, torch.ones(3, dtype=torch.long))[0]
    features = model.discriminator.body(x)
    embedding = model.discriminator.projection.weight
    torch.testing.assert_close(second - first, ((embedding[1] - embedding[0]) * features).sum(1, keepdim=True))


def test_unconditional_refuses_labels_and_truncation_bounds_z(tmp_path):
    model = _trainer(tmp_path).model.eval()
    with pytest.raises(GenzooError, match="unconditional"):
        model.generate(2, labels=torch.tensor([0, 1]))
    z = model.sample_latent(500, truncation=0.5)
    assert z.abs().max() <= 0.5 and z.abs().max() > 0.4
    with pytest.raises(GenzooError, match="positive"):
        model.sample_latent(2, truncation=0.0)


def test_spectral_norm_and_resnet_and_layer_norm_build(tmp_path):
    model = _trainer(tmp_path, spectral_norm=True, discriminator_norm="layer").model
    assert any("parametrizations" in name for name, _ in model.discriminator.named_parameters())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in model.discriminator.modules())


def test_gan_bad_input_through_the_cli(tmp_path, capsys):
    from test_cli import TINY, genzoo

    flat = tmp_path / "flat"
    flat.mkdir()
    from PIL import Image

    for i in range(20):
        Image.new("L", (16, 16), color=10 * i).save(flat / f"{i}.png")
    tiny_gan = ["model.latent_dim=8", "model.generator_width=4", "model.discriminator_width=4"]
    code, _, err = genzoo(capsys, "train", "cgan", *TINY, *tiny_gan, "data.name=image-folder", f"data.root={flat}",
                          "--out", tmp_path / "c")
    assert code == 2 and "needs class labels" in err and not (tmp_path / "c").exists()
    code, _, err = genzoo(capsys, "train", "gan", "model.objective=wasserstein", "--out", tmp_path / "w")
    assert code == 2 and "wgan-gp" in err
    assert genzoo(capsys, "train", "cgan", *TINY, *tiny_gan, "--out", tmp_path / "cgan")[0] == 0
    code, _, err = genzoo(capsys, "sample", tmp_path / "cgan", "-n", "4", "--labels", "9", "-o", tmp_path / "x.png")
    assert code == 2 and "give class indices 0 to 1" in err and not (tmp_path / "x.png").exists()
    code, _, err = genzoo(capsys, "sample", tmp_path / "cgan", "-n", "4", "--labels", "1", "--truncation", "0.7",
                          "-o", tmp_path / "ok.png")
    assert code == 0 and (tmp_path / "ok.png").is_file()

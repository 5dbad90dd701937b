"""The latent-variable families: autoencoder losses, GLO, beta-VAE and conditional VAE, the swap
autoencoder, and the data they need (stable indices, two domains). Known answers for every formula."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_config
from PIL import Image
from test_cli import TINY, genzoo, snapshot

import genzoo as gz
from genzoo.config import DataConfig, build_config
from genzoo.data import build_dataset
from genzoo.errors import DataError, GenzooError
from genzoo.losses import ImageLoss, PerceptualDistance, gaussian_kl, laplacian_l1, laplacian_pyramid
from genzoo.models.base import DataInfo
from genzoo.models.glo import GLO, GLOConfig
from genzoo.models.swap import SwapAutoencoder, SwapConfig
from genzoo.models.vae import VAE, VAEConfig, bernoulli_nll, gaussian_nll
from genzoo.api import make_trainer

INFO = DataInfo(channels=1, image_size=16, num_classes=2, num_images=64)


# ----------------------------------------------------------------------------- loss terms


def test_kl_term_matches_torch_distributions():
    mu, logvar = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    posterior = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    prior = torch.distributions.Normal(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    expected = torch.distributions.kl_divergence(posterior, prior).sum(1)  # (5,)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-12)
    assert gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max() == 0  # q = prior


def test_laplacian_loss_of_identical_images_is_zero_and_the_pyramid_collapses_back():
    x = torch.rand(3, 2, 28, 28) * 2 - 1
    assert laplacian_l1(x, x.clone()).abs().max() == 0
    levels = laplacian_pyramid(x, levels=4)
    assert [tuple(level.shape[-2:]) for level in levels] == [(28, 28), (14, 14), (7, 7), (4, 4)]
    rebuilt = levels[-1]  # collapse: G^j = L^j + up(G^{j+1}), coarse to fine
    for level in reversed(levels[:-1]):
        rebuilt = level + torch.nn.functional.interpolate(rebuilt, size=level.shape[-2:], mode="bilinear", align_corners=False)
    assert torch.allclose(rebuilt, x, atol=1e-6)


def test_laplacian_loss_puts_a_constant_shift_in_the_coarsest_level_only():
    x = torch.rand(2, 1, 16, 16)
    shifted = x + 0.3  # a constant has no band-pass content: only the low-pass residual differs, by 0.3
    levels = len(laplacian_pyramid(x, 4))  # 16 -> 8 -> 4 -> 2: four levels
    expected = 4.0 ** -(levels - 1) * 0.3
    assert torch.allclose(laplacian_l1(shifted, x, 4), torch.full((2,), expected), atol=1e-6)


def test_image_loss_is_the_weighted_sum_of_its_parts():
    x, x_hat = torch.rand(4, 1, 16, 16) * 2 - 1, torch.rand(4, 1, 16, 16) * 2 - 1
    loss = ImageLoss({"mse": 2.0, "mae": 0.5, "laplacian": 1.0})
    total, parts = loss(x_hat, x)
    assert torch.allclose(parts["mse"], (x_hat - x).pow(2).mean((1, 2, 3)))
    assert torch.allclose(parts["mae"], (x_hat - x).abs().mean((1, 2, 3)))
    assert torch.allclose(total, 2 * parts["mse"] + 0.5 * parts["mae"] + parts["laplacian"])


def test_perceptual_distance_is_zero_for_identical_images_and_differentiable():
    distance = PerceptualDistance("fmnist")
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    assert distance(x, x.clone()).abs().max() < 1e-10
    x_hat = (x + 0.2 * torch.randn_like(x)).requires_grad_(True)
    value = distance(x_hat, x)  # (3,)
    assert value.shape == (3,) and (value > 0).all()
    value.sum().backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in distance.features.network.parameters())  # the network stays frozen


def test_perceptual_autoencoder_keeps_the_feature_network_out_of_its_weights():
    model = gz.models.autoencoder.Autoencoder(
        gz.models.autoencoder.AutoencoderConfig(latent_dim=4, width=4, loss={"mse": 1.0, "perceptual": 0.1}),
        DataInfo(channels=1, image_size=28))
    assert all(key.split(".")[0] in ("encoder", "decoder") for key in model.state_dict())
    losses = model("main", {"image": torch.rand(4, 1, 28, 28) * 2 - 1})
    assert set(losses) == {"total", "mse", "perceptual"}
    assert torch.allclose(losses["total"], losses["mse"] + 0.1 * losses["perceptual"])


# ----------------------------------------------------------------------------- VAE: likelihoods, beta, conditional


def test_gaussian_and_bernoulli_likelihoods_known_answers():
    x = torch.tensor([[[[-1.0, 1.0], [0.0, 0.5]]]])  # (1, 1, 2, 2)
    x_hat = torch.tensor([[[[-0.5, 1.0], [0.0, 0.0]]]])
    assert gaussian_nll(x_hat, x).item() == pytest.approx(0.25 + 0.25 + 2 * math.log(math.pi))  # sum sq + D/2 log pi
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]])
    target = (x + 1) / 2  # 0, 1, 0.5, 0.75
    by_hand = sum(-(t * math.log(1 / (1 + math.exp(-l))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(-l))))
                  for t, l in zip(target.flatten().tolist(), logits.flatten().tolist()))
    assert bernoulli_nll(logits, x).item() == pytest.approx(by_hand)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_vae_loss_is_reconstruction_plus_beta_kl(likelihood):
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=4, width=4, beta=4.0, likelihood=likelihood), INFO)
    batch = {"image": torch.rand(6, 1, 16, 16) * 2 - 1}
    losses = model("main", batch)
    assert torch.allclose(losses["total"], losses["reconstruction"] + 4.0 * losses["kl"])
    model.eval()
    out = model.reconstruct(batch["image"])
    assert out.shape == (6, 1, 16, 16) and out.min() >= -1 and out.max() <= 1
    assert (model.likelihood.offset is None) == (likelihood == "bernoulli")  # bits/dim only for a density


def test_conditional_vae_uses_labels_in_encoder_and_decoder():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=4, width=4, conditional=True), INFO).eval()
    assert model.requires == ("image", "label")
    z = torch.randn(4, 4)
    zeros, ones = model.decode_latent(z, torch.zeros(4, dtype=torch.long)), model.decode_latent(z, torch.ones(4, dtype=torch.long))
    assert not torch.allclose(zeros, ones)  # the label changes the decoded image
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    assert not torch.allclose(model.encode(x, torch.zeros(4, dtype=torch.long)), model.encode(x, torch.ones(4, dtype=torch.long)))
    assert model.generate(5, labels=torch.tensor([1, 1, 0, 1, 0])).shape == (5, 1, 16, 16)
    with pytest.raises(GenzooError, match=r"class indices in \[0, 1\]"):
        model.generate(2, labels=torch.tensor([0, 2]))
    with pytest.raises(GenzooError, match="unconditional"):
        VAE(VAEConfig(latent_dim=4, width=4), INFO).generate(2, labels=torch.tensor([0, 1]))


def test_conditional_vae_trains_and_reports_its_elbo(tmp_path):
    run = make_trainer(tiny_config("vae", model={"conditional": True}), tmp_path / "cvae", progress=False).fit()
    nll, bits = gz.evaluate(run.path, ["elbo"], num_samples=64)
    assert math.isfinite(nll.value) and nll.value > 0
    assert bits.value == pytest.approx((nll.value / 256 + math.log(128)) / math.log(2))
    (accuracy,) = [s for s in gz.evaluate(run.path, ["recon"], num_samples=64) if s.name == "mse"]
    assert 0 <= accuracy.value < 1


# ----------------------------------------------------------------------------- GLO


def test_glo_codes_stay_on_the_unit_sphere_through_training(tmp_path):
    trainer = make_trainer(tiny_config("glo", steps=5, ema_decay=None), tmp_path / "glo", progress=False)
    trainer.fit()
    norms = trainer.model.codes.weight.norm(dim=1)  # (64,)
    assert norms.shape == (64,) and torch.allclose(norms, torch.ones(64), atol=1e-6)
    samples = trainer.model.sample_latent(100)
    assert torch.allclose(samples.norm(dim=1), torch.ones(100), atol=1e-5)


def test_glo_encode_by_optimisation_recovers_a_training_code():
    torch.manual_seed(0)
    data = build_dataset(DataConfig(name="fake", image_size=16, max_images=16))
    model = GLO(GLOConfig(latent_dim=4, width=16, encode_steps=150, encode_lr=0.05), data.info)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    batch = data.batch(torch.arange(16))
    for _ in range(300):  # fit the 16 images (the training loop, without the trainer)
        loss = model("main", batch)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.after_step("main")
    model.eval()
    learned = model.codes.weight.detach()[:4]  # (4, D)
    found = model.encode(batch["image"][:4])  # (4, D), from random starting codes
    random_codes = torch.nn.functional.normalize(torch.randn(1000, 4), dim=1)
    distance_found = (found - learned).norm(dim=1)  # (4,)
    distance_random = torch.cdist(learned, random_codes).mean()  # about sqrt(2) on the sphere
    assert distance_found.mean() < 0.3 * distance_random, (distance_found, distance_random)


def test_glo_needs_stable_indices_and_says_so(tmp_path, capsys):
    code, _, err = genzoo(capsys, "train", "glo", *TINY, "model.latent_dim=4", "model.width=4",
                          "data.domains=[0, 1]", "--out", tmp_path / "glo")
    assert code == 2 and err.count("\n") == 1 and "index" in err and "Traceback" not in err
    assert not (tmp_path / "glo").exists()


# ----------------------------------------------------------------------------- swap autoencoder and two domains


def test_swap_translate_uses_the_other_domains_decoder():
    torch.manual_seed(0)
    model = SwapAutoencoder(SwapConfig(latent_dim=4, width=4), INFO).eval()
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    code = model.encoder(x)
    assert torch.equal(model.translate(x, to="b"), model.decoder_b(code))
    assert torch.equal(model.translate(x, to="a"), model.decoder_a(code))
    assert not torch.allclose(model.translate(x, to="b"), model.reconstruct(x, domain="a"))
    with torch.no_grad():  # a's decoder does not take part in a -> b
        for p in model.decoder_a.parameters():
            p.zero_()
    assert torch.equal(model.translate(x, to="b"), model.decoder_b(code))
    with pytest.raises(GenzooError, match="is not a domain of this model; use one of: a, b"):
        model.translate(x, to="c")


def test_swap_loss_reconstructs_each_domain_with_its_own_decoder():
    torch.manual_seed(0)
    model = SwapAutoencoder(SwapConfig(latent_dim=4, width=4, loss="mse"), INFO)
    a, b = torch.rand(4, 1, 16, 16) * 2 - 1, torch.rand(4, 1, 16, 16) * 2 - 1
    losses = model("main", {"a": a, "b": b})
    assert torch.allclose(losses["a"], (model.decoder_a(model.encoder(a)) - a).pow(2).mean())
    assert torch.allclose(losses["b"], (model.decoder_b(model.encoder(b)) - b).pow(2).mean())
    assert torch.allclose(losses["total"], losses["a"] + losses["b"])


def test_two_domains_from_class_names_or_indices():
    by_name = build_dataset(DataConfig(name="fashion-mnist-sample", domains=("sneaker", "Ankle boot"), max_images=500))
    by_index = build_dataset(DataConfig(name="fashion-mnist-sample", domains=(7, 9), max_images=500))
    assert by_name.keys == ("a", "b") and by_name.names == ("Sneaker", "Ankle boot")
    assert torch.equal(by_name.images, by_index.images) and torch.equal(by_name.images_b, by_index.images_b)
    full = build_dataset(DataConfig(name="fashion-mnist-sample", max_images=500))
    assert len(by_name.images) == int((full.labels == 7).sum()) and len(by_name.images_b) == int((full.labels == 9).sum())
    batch = by_name.batch(torch.arange(len(by_name)))
    assert batch["a"].shape[0] == batch["b"].shape[0] == len(by_name) == max(len(by_name.images), len(by_name.images_b))
    for bad, message in (((7, 7), "same class twice"), (("sneaker", "boots"), "not a class")):
        with pytest.raises(DataError, match=message):
            build_dataset(DataConfig(name="fashion-mnist-sample", domains=bad, max_images=500))


def test_swap_with_one_domain_is_one_sentence_and_exit_2(tmp_path, capsys):
    base = ["train", "swap", *TINY, "model.latent_dim=4", "model.width=4"]
    for extra, expected in ((["data.domains=[0]"], "data.domains"), (["data.domains=null"], "data.domains=[A, B]")):
        code, _, err = genzoo(capsys, *base, *extra, "--out", tmp_path / "swap")
        assert code == 2 and err.count("\n") == 1 and expected in err and "Traceback" not in err, err
    assert not (tmp_path / "swap").exists()


def test_conditional_vae_without_labels_is_one_sentence_and_exit_2(tmp_path, capsys):
    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(16):  # a flat folder: images without labels
        Image.new("L", (16, 16), color=i * 10).save(folder / f"{i}.png")
    code, _, err = genzoo(capsys, "train", "cvae", *TINY, "model.latent_dim=4", "model.width=4",
                          "data.name=image-folder", f"data.root={folder}", "--out", tmp_path / "cvae")
    assert code == 2 and err.count("\n") == 1 and "labelled dataset" in err and "Traceback" not in err, err
    assert not (tmp_path / "cvae").exists()


def test_lfw_subset_faces():
    pytest.importorskip("skimage")
    data = build_dataset(DataConfig(name="lfw-subset"))
    assert data.images.shape == (200, 1, 32, 32) and data.labels.bincount().tolist() == [100, 100]
    domains = build_dataset(DataConfig(name="lfw-subset", domains=("face", "non-face")))
    assert len(domains.images) == len(domains.images_b) == 100


# ----------------------------------------------------------------------------- pictures


def test_latent_reconstruct_and_swap_pictures(tmp_path, capsys):
    glo = make_trainer(tiny_config("glo"), tmp_path / "glo", progress=False).fit().path
    swap = make_trainer(tiny_config("swap"), tmp_path / "swap", progress=False).fit().path
    code, out, err = genzoo(capsys, "latent", "reconstruct", glo, "-n", "4", "-o", tmp_path / "recon.png")
    assert code == 0, err
    assert Image.open(tmp_path / "recon.png").size[0] > 0 and "reconstructions" in out
    code, out, err = genzoo(capsys, "latent", "swap", swap, "-n", "3", "-o", tmp_path / "swap.png")
    assert code == 0, err
    width, height = Image.open(tmp_path / "swap.png").size
    assert (width, height) == (4 * 17 + 1, 3 * 17 + 1)  # rows a, a->b, b, b->a of 16 px with 1 px padding
    before = snapshot(glo)
    code, _, err = genzoo(capsys, "latent", "swap", glo, "-o", tmp_path / "x.png")
    assert code == 2 and "does not translate" in err and err.count("\n") == 1
    code, _, err = genzoo(capsys, "latent", "reconstruct", tmp_path / "nothing", "-o", tmp_path / "x.png")
    assert code == 2 and err.count("\n") == 1
    assert snapshot(glo) == before and not (tmp_path / "x.png").exists()


def test_glo_and_swap_previews_in_training_grids(tmp_path):
    run = make_trainer(tiny_config("swap", num_preview=8), tmp_path / "swap", progress=False).fit()
    grid = Image.open(sorted(run.samples.glob("*.png"))[-1])
    assert grid.size == (4 * 17 + 1, 2 * 17 + 1)  # two rows of a, a->b, b, b->a
    config = build_config({"family": "glo", "data": {"name": "fake", "image_size": 16}})
    assert config.model.loss == {"mae": 1.0, "laplacian": 1.0}  # the paper's L1 + Laplacian loss by default


@pytest.mark.parametrize("family, expected", [
    ("vae", {"samples", "reconstructions", "interpolation", "traversal"}),
    ("autoencoder", {"reconstructions"}),
    ("glo", {"samples", "reconstructions", "interpolation"}),
    ("swap", {"swaps", "cycles"}),
])
def test_report_shows_what_each_model_does(family, expected, tmp_path):
    run = make_trainer(tiny_config(family), tmp_path / family, progress=False).fit()
    assert {p.stem for p in (run.path / "pictures").glob("*.png")} == expected
    page = run.report.read_text()
    assert "What the model does" in page and page.count("<figure>") >= len(expected)

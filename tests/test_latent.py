"""Latent-space tools: known answers for lerp/slerp, the shapes of the pictures, class means and
latent arithmetic checked by hand on tiny trained models, and `genzoo latent ...` end to end."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_config
from PIL import Image
from test_cli import genzoo as run_cli

import genzoo
from genzoo.data import build_dataset
from genzoo.data.fashion_mnist import CLASSES
from genzoo.errors import GenzooError
from genzoo.latent import (arithmetic, class_mean_latents, decode, interpolation_grid, latent_codes, lerp,
                           resolve_class, slerp, traversal)
from genzoo.api import make_trainer

PIXELS = 16 + 1  # a 16-px image plus the grid's 1-px padding


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny trained runs on the `fake` dataset (16 px, 2 classes): gan, cgan, vae, autoencoder."""
    root = tmp_path_factory.mktemp("latent")
    configs = {"gan": tiny_config("gan"), "cgan": tiny_config("gan", {"conditional": "cgan"}),
               "vae": tiny_config("vae"), "autoencoder": tiny_config("autoencoder")}
    return {name: make_trainer(config, root / name, progress=False).fit().path for name, config in configs.items()}


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- lerp and slerp


def test_lerp_midpoint_and_batched_shapes():
    z0, z1 = torch.tensor([0.0, 2.0, -4.0]), torch.tensor([2.0, 4.0, 0.0])
    assert torch.allclose(lerp(z0, z1, 0.5), torch.tensor([1.0, 3.0, -2.0]))
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    path = lerp(a, b, torch.linspace(0, 1, 4))
    assert path.shape == (4, 5, 7)
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b)


def test_slerp_endpoints_equal_the_inputs():
    a, b = torch.randn(3, 16), torch.randn(3, 16)
    path = slerp(a, b, [0.0, 0.3, 1.0])  # (3 steps, 3 codes, 16)
    assert path.shape == (3, 3, 16)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    assert slerp(a[0], b[0], 0.3).shape == (16,)


def test_slerp_of_orthogonal_unit_vectors_stays_on_the_circle():
    e1, e2 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    middle = slerp(e1, e2, 0.5)
    assert torch.allclose(middle.norm(), torch.tensor(1.0))
    assert torch.allclose(middle, torch.tensor([1.0, 1.0, 0.0]) / math.sqrt(2))
    assert torch.allclose(slerp(e1, e2, torch.linspace(0, 1, 11)).norm(dim=-1), torch.ones(11), atol=1e-6)
    assert lerp(e1, e2, 0.5).norm() < 0.71  # the straight line cuts inside the sphere: 1/sqrt(2)


def test_slerp_of_parallel_and_antiparallel_vectors_falls_back_to_lerp():
    z = torch.tensor([1.0, 2.0, 2.0])
    for other in (3 * z, -z):
        t = torch.linspace(0, 1, 5)
        path = slerp(z, other, t)
        assert torch.isfinite(path).all()
        assert torch.allclose(path, lerp(z, other, t), atol=1e-6)


# ----------------------------------------------------------------------------- pictures


@pytest.mark.parametrize("family", ["gan", "vae"])
def test_interpolation_grid_rows_walk_from_one_code_to_another(runs, family):
    model = genzoo.load(runs[family])
    grid = interpolation_grid(model, rows=3, steps=4, spherical=True, generator=seeded())
    assert grid.shape == (12, 1, 16, 16) and torch.isfinite(grid).all()
    generator = seeded()
    start, end = latent_codes(model, 3, generator), latent_codes(model, 3, generator)
    assert torch.allclose(grid[0::4], decode(model, start), atol=1e-5)  # first column: the start codes
    assert torch.allclose(grid[3::4], decode(model, end), atol=1e-5)  # last column: the end codes
    assert interpolation_grid(model, 2, 5, spherical=False, generator=seeded()).shape == (10, 1, 16, 16)


def test_interpolation_of_a_conditional_gan_keeps_one_class_per_row(runs):
    model = genzoo.load(runs["cgan"])
    grid = interpolation_grid(model, rows=2, steps=3, generator=seeded())
    generator = seeded()
    start = latent_codes(model, 2, generator)
    assert torch.allclose(grid[[0, 3]], model.generate(2, labels=torch.tensor([0, 1]), z=start), atol=1e-5)


def test_traversal_sweeps_one_dimension_per_row(runs):
    model = genzoo.load(runs["vae"])  # latent_dim 4
    images, rows = traversal(model, dims=8, steps=5, span=2.0, generator=seeded())
    assert rows == 4 and images.shape == (20, 1, 16, 16)
    z = latent_codes(model, 1, seeded()).repeat(5, 1)  # the fixed code, (5, D)
    z[:, 2] = torch.linspace(-2, 2, 5)
    assert torch.allclose(images[10:15], decode(model, z), atol=1e-5)  # row 2 sweeps dimension 2


def test_a_model_without_a_prior_has_no_latent_space(runs):
    model = genzoo.load(runs["autoencoder"])
    with pytest.raises(GenzooError, match="no latent space to walk"):
        latent_codes(model, 2)
    with pytest.raises(GenzooError, match="no latent space to walk"):
        interpolation_grid(model, 2, 3)


# ----------------------------------------------------------------------------- class means and arithmetic


def test_vae_class_means_are_the_mean_codes_of_real_images_per_label(runs):
    model = genzoo.load(runs["vae"])
    data = build_dataset(tiny_config("vae").data)  # 64 fake images, labels 0/1
    means = class_mean_latents(model, num=64, generator=seeded(), data=data)
    codes = model.encode(data.images.float() / 127.5 - 1)  # (64, D)
    for k in (0, 1):
        assert torch.allclose(means.means[k], codes[data.labels == k].mean(0), atol=1e-5)
        assert means.counts[k] == (data.labels == k).sum()
    assert means.names == ("0", "1") and "labels" in means.source

    images = arithmetic(model, "1", 0, 1, means=means, generator=seeded())
    assert images.shape == (12, 1, 16, 16)
    y = means.means[1] - means.means[0] + means.means[1]
    assert torch.allclose(images[:3], model.decoder(means.means[[1, 0, 1]]), atol=1e-5)
    assert torch.allclose(images[3], model.decoder(y[None])[0], atol=1e-5)
    assert not torch.allclose(images[4], images[3])  # the noisy variants around y


def test_gan_class_means_group_codes_by_a_classifier_and_arithmetic_decodes_them(runs):
    model = genzoo.load(runs["gan"])
    z = latent_codes(model, 200, seeded())
    brightness = model.generate(200, z=z).mean(dim=(1, 2, 3))  # (200,)
    threshold = brightness.median()

    def classifier(images):  # 3 classes: dark, bright, and one never predicted
        b = images.mean(dim=(1, 2, 3)) - threshold
        return {"logits": torch.stack([-b, b, torch.full_like(b, -1e9)], dim=1)}

    means = class_mean_latents(model, num=200, generator=seeded(), classifier=classifier, exemplars=None)
    labels = (brightness > threshold).long()
    assert means.means.shape == (3, 8) and means.counts.tolist() == [int((labels == 0).sum()), int((labels == 1).sum()), 0]
    for k in (0, 1):
        assert torch.allclose(means.means[k], z[labels == k].mean(0), atol=1e-5)
    images = arithmetic(model, 1, 0, 0, means=means, generator=seeded(), variants=2)
    y = means.means[1] - means.means[0] + means.means[0]
    assert images.shape == (6, 1, 16, 16)
    assert torch.allclose(images[3], model.generate(1, z=y[None])[0], atol=1e-5)
    with pytest.raises(GenzooError, match="no sample fell in class '2'"):
        arithmetic(model, 2, 0, 1, means=means)

    # the default for prior codes: like the paper, average 3 exemplars, those the classifier is surest of
    three = class_mean_latents(model, num=200, generator=seeded(), classifier=classifier)
    assert three.counts.tolist() == [3, 3, 0] and three.available.tolist() == means.counts.tolist()
    surest = (brightness - threshold).abs()  # the stub's confidence grows with the distance to the threshold
    for k in (0, 1):
        members = (labels == k).nonzero().flatten()
        top = members[surest[members].argsort(descending=True)[:3]]
        assert torch.allclose(three.means[k], z[top].mean(0), atol=1e-5)


def test_gan_class_means_with_the_fmnist_classifier_use_fashion_mnist_names(runs):
    model = genzoo.load(runs["gan"])
    means = class_mean_latents(model, num=40, generator=seeded(), exemplars=None)
    assert means.names == CLASSES and int(means.counts.sum()) == 40 and means.means.shape == (10, 8)


def test_conditional_gan_classes_are_its_labels(runs):
    model = genzoo.load(runs["cgan"])
    means = class_mean_latents(model, num=10, generator=seeded(), exemplars=None)
    z = latent_codes(model, 10, seeded())
    assert means.counts.tolist() == [5, 5]
    assert torch.allclose(means.means[1], z[1::2].mean(0), atol=1e-6)
    images = arithmetic(model, 0, 1, 1, means=means, generator=seeded(), variants=0)
    y = means.means[0] - means.means[1] + means.means[1]
    assert images.shape == (4, 1, 16, 16)
    assert torch.allclose(images[3], model.generate(1, labels=torch.tensor([1]), z=y[None])[0], atol=1e-5)  # label of c


def test_classes_by_index_or_name():
    assert resolve_class("trouser", CLASSES) == 1
    assert resolve_class("T-shirt", CLASSES) == 0 and resolve_class("ankle boot", CLASSES) == 9
    assert resolve_class(7, CLASSES) == 7 and resolve_class("8", CLASSES) == 8
    for bad in ("Trousers", "s", "10", "-1"):
        with pytest.raises(GenzooError):
            resolve_class(bad, CLASSES)


# ----------------------------------------------------------------------------- the command


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_latent_commands_write_grids_of_the_expected_size(runs, tmp_path, capsys):
    code, out, err = run_cli(capsys, "latent", "interpolate", runs["gan"], "--rows", "2", "--steps", "3",
                             "-o", tmp_path / "walk.png")
    assert code == 0, err
    assert png_size(tmp_path / "walk.png") == (3 * PIXELS + 1, 2 * PIXELS + 1)

    code, out, err = run_cli(capsys, "latent", "traverse", runs["vae"], "--steps", "5", "--range", "2",
                             "-o", tmp_path / "traverse")  # no suffix: .png added
    assert code == 0, err
    assert png_size(tmp_path / "traverse.png") == (5 * PIXELS + 1, 4 * PIXELS + 1)  # 4 = all dimensions

    code, out, err = run_cli(capsys, "latent", "arithmetic", runs["vae"], "--a", "1", "--b", "0", "--c", "1",
                             "--num", "64", "-o", tmp_path / "sum.png", "--no-ema")
    assert code == 0, err
    assert png_size(tmp_path / "sum.png") == (4 * PIXELS + 1, 3 * PIXELS + 1)
    assert "mean of" in out and "class 1" in out and "class 0" in out


def test_latent_help(capsys):
    for command in ((), ("interpolate",), ("arithmetic",), ("traverse",)):
        code, out, _ = run_cli(capsys, "latent", *command, "--help")
        assert code == 0 and "Usage" in out


def test_latent_bad_input_is_one_sentence_and_exit_2(runs, tmp_path, capsys):
    cases = [
        (("interpolate", runs["autoencoder"]), "no latent space"),
        (("arithmetic", runs["vae"], "--a", "Trouser", "--b", "0", "--c", "1"), "unknown class"),
        (("traverse", runs["vae"], "-o", tmp_path / "a-file" / "t.png"), "is a file"),  # (missing folders are created)
    ]
    (tmp_path / "a-file").write_bytes(b"x")
    for args, message in cases:
        code, out, err = run_cli(capsys, "latent", *args, "--seed", "1")
        assert code == 2, (args, err)
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [tmp_path / "a-file"]

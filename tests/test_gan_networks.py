"""GAN building blocks: ResNet and MLP networks (shapes, range, spectral norm) and the 2-D toy
mixtures with their mode statistics (known answers)."""

from __future__ import annotations


import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import genzoo  # noqa: F401  (fills the registries)
from genzoo.config import DataConfig
from genzoo.data import BatchStream, build_dataset
from genzoo.data.toy import MODE_STD, PointData, mode_statistics, modes, sample_points
from genzoo.errors import ConfigError, DataError
from genzoo.nn import MLPDiscriminatorBody, MLPGenerator, ResNetDiscriminatorBody, ResNetGenerator


def apply_spectral_norm(module: nn.Module) -> int:
    """Spectral norm on every Conv2d and Linear, as the GAN applies it; returns how many."""
    layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        spectral_norm(layer)
    return len(layers)


# ----------------------------------------------------------------------------- ResNet

@pytest.mark.parametrize("size, width, channels", [(16, 4, 1), (28, 8, 1), (32, 4, 3), (64, 4, 3)])
def test_resnet_shapes_and_range(size, width, channels):
    generator = ResNetGenerator(latent_dim=8, image_size=size, channels=channels, width=width)
    images = generator(torch.randn(3, 8) * 10)  # large z: the Tanh must still bound the output
    assert images.shape == (3, channels, size, size)
    assert images.abs().max() <= 1.0 and torch.isfinite(images).all()
    for norm in ("none", "layer", "batch"):
        body = ResNetDiscriminatorBody(size, channels, width, norm=norm)
        features = body(images)
        assert features.shape == (3, body.feature_dim) and torch.isfinite(features).all()
        assert (features >= 0).all()  # ReLU then sum pooling


def test_resnet_channel_counts():
    """SNGAN's ImageNet scheme: G halves to `width`, D doubles from `width` (32 px: k = 3)."""
    generator = ResNetGenerator(latent_dim=8, image_size=32, channels=3, width=16)
    assert [block.conv2.out_channels for block in generator.blocks] == [64, 32, 16]
    assert generator.dense.out_features == 64 * 4 * 4
    body = ResNetDiscriminatorBody(32, 3, 16)
    assert body.feature_dim == 64 and [b.conv2.out_channels for b in body.blocks] == [16, 32, 64, 64]
    assert ResNetDiscriminatorBody(28, 1, 16).feature_dim == 32  # 28 = 7 * 2^2


def test_resnet_norm_layers():
    assert any(isinstance(m, nn.GroupNorm) for m in ResNetDiscriminatorBody(16, 1, 4, norm="layer").modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in ResNetDiscriminatorBody(16, 1, 4, norm="batch").modules())
    assert not any(isinstance(m, (nn.GroupNorm, nn.BatchNorm2d)) for m in ResNetDiscriminatorBody(16, 1, 4).modules())
    with pytest.raises(ConfigError, match="layer"):
        ResNetDiscriminatorBody(16, 1, 4, norm="instance")


def test_resnet_bad_size_is_a_config_error():
    with pytest.raises(ConfigError, match="image size"):
        ResNetGenerator(8, 24 * 3, 1, 4)  # 72 = 9 * 8: base 9 > 7


def test_spectral_norm_on_every_layer():
    torch.manual_seed(0)
    body, generator = ResNetDiscriminatorBody(16, 3, 4, norm="layer"), ResNetGenerator(8, 16, 3, 4)
    assert apply_spectral_norm(body) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in body.modules()) > 0
    apply_spectral_norm(generator)
    features = body(generator(torch.randn(2, 8)))
    features.sum().backward()
    assert features.shape == (2, body.feature_dim)
    assert all(p.grad is not None for p in body.parameters() if p.requires_grad)
    mlp = MLPDiscriminatorBody(2, 16, 2)
    assert apply_spectral_norm(mlp) == 2
    assert mlp(torch.randn(5, 2, 1, 1)).shape == (5, 16)
    # after a few power iterations the normalised weight has spectral norm ~1
    layer = mlp.net[0]
    for _ in range(20):
        layer(torch.randn(1, 2))
    layer.eval()
    assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, abs=1e-3)


# ----------------------------------------------------------------------------- MLP

def test_mlp_shapes_and_range():
    generator = MLPGenerator(latent_dim=6, out_dim=2, width=16, depth=3)
    points = generator(torch.randn(7, 6) * 100)
    assert points.shape == (7, 2, 1, 1) and points.abs().max() <= 1.0
    assert sum(isinstance(m, nn.Linear) for m in generator.modules()) == 4  # 3 hidden + output
    for norm in ("none", "layer", "batch"):
        body = MLPDiscriminatorBody(in_dim=2, width=16, depth=2, norm=norm)
        assert body.feature_dim == 16 and body(points).shape == (7, 16)
    with pytest.raises(ConfigError):
        MLPDiscriminatorBody(norm="group")
    images = MLPGenerator(latent_dim=6, width=16, out_shape=(1, 8, 8))(torch.randn(3, 6))
    assert images.shape == (3, 1, 8, 8) and MLPDiscriminatorBody(64, 16, 2)(images).shape == (3, 16)


# ----------------------------------------------------------------------------- toy data

def test_mode_centres():
    ring = modes("ring8")
    assert ring.shape == (8, 2)
    assert torch.allclose(ring.norm(dim=1), torch.full((8,), 0.8))
    assert torch.allclose(ring[0], torch.tensor([0.8, 0.0]))
    assert torch.allclose(ring[2], torch.tensor([0.0, 0.8]), atol=1e-7)
    grid = modes("grid25")
    assert grid.shape == (25, 2)
    assert torch.allclose(grid[0], torch.tensor([-0.8, -0.8])) and torch.allclose(grid[24], torch.tensor([0.8, 0.8]))
    assert torch.allclose(grid[7], torch.tensor([-0.4, 0.0]))  # row 1, column 2
    assert len({tuple(p) for p in grid.mul(10).round().int().tolist()}) == 25
    with pytest.raises(ConfigError, match="ring8"):
        modes("spiral")


@pytest.mark.parametrize("name, k", [("ring8", 8), ("grid25", 25)])
def test_toy_dataset(name, k):
    data = build_dataset(DataConfig(name=name, max_images=1000))
    assert isinstance(data, PointData) and len(data) == 1000
    assert data.info.channels == 2 and data.info.image_size == 1 and data.info.num_classes == k
    assert data.keys == ("image", "index", "label") and name in data.source and data.notes == []
    batch = BatchStream(data, batch_size=100, seed=0).next()
    assert batch["image"].shape == (100, 2, 1, 1) and batch["image"].dtype == torch.float32
    assert batch["image"].abs().max() <= 1.0 and batch["label"].dtype == torch.int64
    # every point sits near the centre of its label, and the modes are balanced
    offsets = batch["image"].flatten(1) - modes(name)[batch["label"]]
    assert offsets.norm(dim=1).max() < 6 * MODE_STD
    assert torch.bincount(data.labels, minlength=k).tolist() == [1000 // k + (i < 1000 % k) for i in range(k)]
    assert data.images.flatten(1).std(0).min() > 0.3  # spread over the modes, not one blob
    # deterministic, a different split draws different points, the default size is 50,000
    again = build_dataset(DataConfig(name=name, max_images=1000))
    assert torch.equal(again.images, data.images) and torch.equal(again.labels, data.labels)
    test = build_dataset(DataConfig(name=name, max_images=1000, split="test"))
    assert not torch.equal(test.images, data.images)
    assert len(build_dataset(DataConfig(name=name))) == 50_000


def test_toy_noise_has_mode_std():
    points, labels = sample_points("ring8", 20_000, seed=3)
    offsets = points - modes("ring8")[labels]
    assert offsets.std().item() == pytest.approx(MODE_STD, rel=0.03)
    assert mode_statistics(points, modes("ring8"))["high_quality"] > 0.98  # 3 std in 2-D: 98.9%


def test_toy_dataset_rejects_image_settings():
    with pytest.raises(DataError, match="channels"):
        build_dataset(DataConfig(name="ring8", channels=3))
    with pytest.raises(DataError, match="image_size"):
        build_dataset(DataConfig(name="ring8", image_size=16))
    assert build_dataset(DataConfig(name="ring8", image_size=1, max_images=10)).images.shape == (10, 2, 1, 1)


def test_mode_statistics_known_answers():
    grid = modes("grid25")
    exact = grid.repeat(4, 1)  # 100 samples, 4 exactly at each centre
    assert mode_statistics(exact, grid) == {"modes_covered": 25, "high_quality": 1.0, "counts": [4] * 25}
    collapsed = grid[3].expand(100, 2)
    stats = mode_statistics(collapsed, grid)
    assert stats["modes_covered"] == 1 and stats["high_quality"] == 1.0 and stats["counts"][3] == 100
    far = torch.full((50, 2), 5.0)
    assert mode_statistics(far, grid) == {"modes_covered": 0, "high_quality": 0.0, "counts": [0] * 25}
    # (N, 2, 1, 1) works too; a point 2.9 std away is good, 3.1 std away is not
    ring = modes("ring8")
    shift = torch.tensor([0.0, MODE_STD])
    near = torch.stack([ring[0] + 2.9 * shift, ring[1] + 3.1 * shift])
    assert mode_statistics(near[:, :, None, None], ring) == {"modes_covered": 1, "high_quality": 0.5,
                                                              "counts": [1, 0, 0, 0, 0, 0, 0, 0]}
    # a mode needs 10% of its fair share: 10,000 samples over 8 modes -> 125
    few = torch.cat([ring[0].expand(9_875, 2), ring[5].expand(125, 2)])
    assert mode_statistics(few, ring)["modes_covered"] == 2
    fewer = torch.cat([ring[0].expand(9_876, 2), ring[5].expand(124, 2)])
    assert mode_statistics(fewer, ring)["modes_covered"] == 1
    assert mode_statistics(fewer, ring, min_fraction=0.01)["modes_covered"] == 2  # threshold 13
    # a uniform cloud grazes every grid mode by chance, but covers none
    uniform = torch.rand(10_000, 2, generator=torch.Generator().manual_seed(0)) * 2.2 - 1.1
    stats = mode_statistics(uniform, grid)
    assert stats["modes_covered"] == 0 and 0 < stats["high_quality"] < 0.03

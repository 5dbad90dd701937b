"""NeRF's math by known answers (positional encoding, stratified samples, volume rendering, inverse
transform sampling), PSNR/SSIM against scikit-image and torchmetrics, the ray datasets (chair-views and
a transforms.json folder) and rendering views of a trained run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import tiny_config
from PIL import Image

from genzoo.config import DataConfig
from genzoo.data import build_dataset
from genzoo.metrics.similarity import psnr, ssim
from genzoo.models.nerf import positional_encoding, sample_pdf, stratified_samples, volume_rendering


def test_positional_encoding_frequencies():
    p = torch.tensor([[0.25, -0.5, 1.0]])
    encoded = positional_encoding(p, 3)
    assert encoded.shape == (1, 3 * (1 + 2 * 3))
    expected = [0.25, -0.5, 1.0]
    for k in range(3):  # sin(2^k pi p), then cos(2^k pi p), for each coordinate
        expected += [math.sin(2**k * math.pi * v) for v in (0.25, -0.5, 1.0)]
        expected += [math.cos(2**k * math.pi * v) for v in (0.25, -0.5, 1.0)]
    assert torch.allclose(encoded[0], torch.tensor(expected), atol=1e-6)
    assert torch.equal(positional_encoding(p, 0), p)  # L = 0: no encoding (the ablation)


def test_stratified_samples_lie_one_in_each_bin():
    t = stratified_samples(2.0, 6.0, rays=500, n=8, perturb=True, device=torch.device("cpu"))
    bins = ((t - 2.0) / 0.5).floor()
    assert torch.equal(bins, torch.arange(8.0).expand_as(bins))  # sample i in [2 + 0.5 i, 2 + 0.5 (i + 1))
    assert stratified_samples(2.0, 6.0, 1, 4, False, torch.device("cpu")).tolist() == [[2.5, 3.5, 4.5, 5.5]]


def test_volume_rendering_of_an_opaque_sample_empty_space_and_a_uniform_medium():
    t = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    colour = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 0]]])
    opaque = volume_rendering(torch.tensor([[0.0, 1e4, 0.0, 0.0]]), colour, t, background=1.0)
    assert torch.allclose(opaque["colour"], torch.tensor([[0.0, 1.0, 0.0]]), atol=1e-6)  # the opaque sample's colour
    assert opaque["depth"].item() == pytest.approx(2.0) and opaque["opacity"].item() == pytest.approx(1.0)
    empty = volume_rendering(torch.zeros(1, 4), colour, t, background=1.0)
    assert torch.allclose(empty["colour"], torch.ones(1, 3)) and empty["opacity"].item() == 0  # the background
    sigma = 0.3  # a medium of density 0.3 up to the last sample: T_i = exp(-0.3 (i - 1)), w_i = T_i (1 - exp(-0.3))
    medium = volume_rendering(torch.tensor([[sigma, sigma, sigma, 0.0]]), colour, t, background=0.0)
    weights = [math.exp(-sigma * i) * (1 - math.exp(-sigma)) for i in range(3)] + [0.0]
    assert torch.allclose(medium["weights"][0], torch.tensor(weights), atol=1e-6)
    assert medium["opacity"].item() == pytest.approx(1 - math.exp(-3 * sigma), rel=1e-6)
    wall = volume_rendering(torch.tensor([[sigma, sigma, sigma, 5.0]]), colour, t, background=0.0)  # ends in a wall
    assert wall["weights"][0, 3].item() == pytest.approx(math.exp(-3 * sigma), rel=1e-6)  # what is left hits the wall
    assert wall["opacity"].item() == pytest.approx(1.0, rel=1e-6)  # (delta_N = 1e10 must not swamp the sum before it)


def test_hierarchical_sampling_draws_from_the_coarse_weights():
    edges = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    fine = sample_pdf(edges, torch.tensor([[0.0, 1.0, 0.0]]), 4, perturb=False)  # all the weight in [1, 2)
    assert torch.allclose(fine, torch.tensor([[1.125, 1.375, 1.625, 1.875]]), atol=2e-4)  # its quantile midpoints
    torch.manual_seed(0)
    many = sample_pdf(torch.tensor([[0.0, 1.0, 3.0]]).expand(20, 3), torch.tensor([[1.0, 3.0]]).expand(20, 2), 5000, True)
    assert (many < 1).float().mean().item() == pytest.approx(0.25, abs=0.01)  # P(bin) = w_bin / sum w
    second = many[many >= 1]
    assert second.mean().item() == pytest.approx(2.0, abs=0.01) and second.max() < 3  # uniform within its bin


def test_psnr_and_ssim_agree_with_scikit_image_and_torchmetrics():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from torchmetrics.image import StructuralSimilarityIndexMeasure

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 24, 24, generator=generator)
    y = (x + 0.1 * torch.randn(3, 3, 24, 24, generator=generator)).clamp(0, 1)
    ours = ssim(x, y)
    for k in range(3):
        reference = structural_similarity(x[k].numpy(), y[k].numpy(), channel_axis=0, data_range=1.0,
                                          gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert ours[k].item() == pytest.approx(reference, abs=1e-6)
        assert psnr(x[k : k + 1], y[k : k + 1]).item() == pytest.approx(
            peak_signal_noise_ratio(x[k].numpy(), y[k].numpy(), data_range=1.0), abs=1e-5)
    metric = StructuralSimilarityIndexMeasure(data_range=1.0)
    assert ours.mean().item() == pytest.approx(metric(y.double(), x.double()).item(), abs=1e-4)  # (2e-5 apart)
    assert torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64))


def test_a_transforms_json_folder_gives_the_rays_of_the_views_it_holds(tmp_path):
    scene = build_dataset(DataConfig(name="chair-views", image_size=16, max_images=3))
    frames = []
    for k in range(3):  # save the renders as RGBA PNGs (background transparent), the Blender scenes' layout
        rgb = (scene.images[k].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        alpha = np.where((rgb == 255).all(-1), 0, 255).astype(np.uint8)
        (tmp_path / "train").mkdir(exist_ok=True)
        Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "train" / f"r_{k}.png")
        frames.append({"file_path": f"./train/r_{k}", "transform_matrix": scene.poses[k].tolist()})
    fov = 2 * math.atan(0.5 * 16 / scene.focal)
    (tmp_path / "transforms_train.json").write_text(json.dumps({"camera_angle_x": fov, "frames": frames}))
    folder = build_dataset(DataConfig(name="posed-images", root=str(tmp_path), image_size=16))
    assert len(folder) == len(scene) == 3 * 16 * 16 and folder.info.focal == pytest.approx(scene.focal)
    batch, expected = folder.batch(torch.arange(len(folder))), scene.batch(torch.arange(len(scene)))
    assert torch.allclose(batch["origin"], expected["origin"], atol=1e-5)
    assert torch.allclose(batch["direction"], expected["direction"], atol=1e-5)
    assert torch.allclose(batch["colour"], expected["colour"], atol=0.5 / 255 + 1e-6)  # 8-bit PNGs
    assert folder.info.near == pytest.approx(1.5) and folder.info.far == pytest.approx(4.5)  # d / 2 and 3 d / 2, d = 3


def test_nerf_renders_views_of_its_scene_and_pictures_for_the_report(tmp_path):
    from genzoo.api import make_trainer

    trainer = make_trainer(tiny_config("nerf"), tmp_path / "run", progress=False)
    model = trainer.model.eval()
    views = model.render(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.5]))
    assert views.shape == (2, 3, 16, 16) and -1 <= views.min() and views.max() <= 1
    assert model.render(torch.tensor([0.0]), torch.tensor([0.5]), size=8).shape == (1, 3, 8, 8)
    assert torch.equal(model.render_poses(trainer.data.poses[:1]), model.render_poses(trainer.data.poses[:1]))  # deterministic
    names = [p.name for p in model.pictures(trainer.data)]
    assert names == ["orbit", "training-views"]
    losses = trainer.model.train()("main", trainer.data.batch(torch.arange(16)))
    assert set(losses) == {"total", "mse_coarse", "mse_fine"}
    assert losses["total"].item() == pytest.approx((losses["mse_coarse"] + losses["mse_fine"]).item())  # Eq. 6

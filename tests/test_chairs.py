"""The chair renderer (known pixels, camera convention, determinism), the chairs dataset and its cache,
the chairs generator (unpooling, loss, capabilities), and `genzoo render`."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_config
from PIL import Image

from genzoo.config import DataConfig
from genzoo.data import build_dataset
from genzoo.data import chairs as chair_data
from genzoo.data.cameras import look_at, orbit_poses, pixel_rays, project
from genzoo.data.chair_render import (AMBIENT, DIFFUSE, LIGHT, SHININESS, SPECULAR, Boxes, cast, chair_types, render,
                                      shade, type_class)
from genzoo.errors import GenzooError
from genzoo.models.chairs import UpConvolution, unpool

# ----------------------------------------------------------------------------- cameras and the renderer


def one_box(half: float, colour=(0.5, 0.25, 1.0)) -> Boxes:
    """A single chair made of one cube of half-size `half` at the origin."""
    return Boxes(torch.zeros(1, 1, 3), torch.full((1, 1, 3), half), torch.eye(3)[None, None], torch.tensor([[colour]]))


def test_a_box_seen_head_on_covers_the_expected_pixels_with_the_expected_colour():
    size, focal, distance, half = 32, 32.0, 4.0, 0.5
    pose = orbit_poses(torch.tensor([-math.pi / 2]), torch.tensor([0.0]), distance)  # at (0, -4, 0), looking along +y
    origins, directions = pixel_rays(pose, size, size, focal)
    t, normal, _ = cast(one_box(half), origins.reshape(1, -1, 3), directions.reshape(1, -1, 3))
    covered = torch.isfinite(t).reshape(size, size)
    # the front face y = -0.5 lies 3.5 in front of the camera: pixel centres within f * 0.5 / 3.5 = 4.57 px of the
    # image centre (16) see it, i.e. columns and rows 11..20 (centres 11.5 .. 20.5)
    expected = torch.zeros(size, size, dtype=torch.bool)
    expected[11:21, 11:21] = True
    assert torch.equal(covered, expected)
    hits = normal.reshape(size, size, 3)[covered]
    assert torch.allclose(hits, torch.tensor([0.0, -1.0, 0.0]).expand_as(hits))  # the face towards the camera
    centre_ray = directions.reshape(size, size, 3)[16, 16]
    assert t.reshape(size, size)[16, 16] == pytest.approx((distance - half) / float(centre_ray[1]), rel=1e-5)
    # Blinn-Phong by hand for that pixel
    n, light, d = torch.tensor([0.0, -1.0, 0.0]), LIGHT, centre_ray
    h = (light - d) / (light - d).norm()
    by_hand = torch.tensor([0.5, 0.25, 1.0]) * (AMBIENT + DIFFUSE * max(0.0, float(n @ light))) \
        + SPECULAR * max(0.0, float(n @ h)) ** SHININESS
    colour = shade(one_box(half), directions.reshape(1, -1, 3), t, normal, torch.zeros_like(t, dtype=torch.long))
    assert torch.allclose(colour.reshape(size, size, 3)[16, 16], by_hand.clamp(0, 1), atol=1e-6)
    assert (colour.reshape(size, size, 3)[~covered] == 1).all()  # white background


def test_the_camera_convention_orbit_look_at_and_pixel_directions():
    pose = orbit_poses(torch.tensor([0.0, math.pi / 2]), torch.tensor([0.0, 0.0]), 2.0)
    assert torch.allclose(pose[:, :3, 3], torch.tensor([[2.0, 0, 0], [0, 2.0, 0]]), atol=1e-6)  # azimuth from +x to +y
    assert torch.allclose(pose[0, :3, :3] @ pose[0, :3, :3].T, torch.eye(3), atol=1e-6)  # a rotation
    assert torch.allclose(pose[0, :3, 2], torch.tensor([1.0, 0, 0]), atol=1e-6)  # camera +z points away: it looks down -z
    assert torch.allclose(pose[0, :3, 0], torch.tensor([0.0, 1.0, 0]), atol=1e-6)  # from +x towards the origin, right is +y
    high = orbit_poses(torch.tensor([0.0]), torch.tensor([math.radians(30)]), 2.0)
    assert high[0, 2, 3] == pytest.approx(1.0)  # 2 sin 30 degrees above the floor
    origins, directions = pixel_rays(pose[:1], 4, 4, 2.0)  # rows run down the image, columns to the right
    assert (directions[0, 0, :, 2] > 0).all() and (directions[0, -1, :, 2] < 0).all()  # top row looks up
    assert (directions[0, :, -1, 1] > 0).all() and (directions[0, :, 0, 1] < 0).all()  # right columns look to +y
    assert torch.allclose(directions.norm(dim=-1), torch.ones(1, 4, 4))
    target = project(torch.zeros(1, 3), look_at(torch.tensor([[1.0, 2.0, 3.0]]), torch.zeros(3))[0], 6, 8, 5.0)
    assert torch.allclose(target, torch.tensor([[4.0, 3.0]]))  # what a camera looks at lands on the image centre


def test_a_point_ray_cast_and_projected_lands_on_the_same_pixel():
    size, focal = 24, 40.0
    types = chair_types(0, range(3))
    poses = orbit_poses(torch.tensor([0.3, 2.0, 4.5]), torch.tensor([0.2, 0.5, 0.35]), 3.0, (0.0, 0.0, 0.5))
    origins, directions = pixel_rays(poses, size, size, focal)
    from genzoo.data.chair_render import chair_boxes

    t, _, _ = cast(chair_boxes(types), origins.reshape(3, -1, 3), directions.reshape(3, -1, 3))
    rows, columns = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for k in range(3):
        hit = torch.isfinite(t[k])
        assert hit.sum() > 20  # the chair is in view
        points = origins.reshape(3, -1, 3)[k][hit] + t[k][hit, None] * directions.reshape(3, -1, 3)[k][hit]
        pixel = project(points, poses[k], size, size, focal)
        centres = torch.stack([columns.flatten()[hit] + 0.5, rows.flatten()[hit] + 0.5], -1).float()
        assert torch.allclose(pixel, centres, atol=1e-3)


def test_rendering_is_deterministic_from_the_seed_and_changes_with_the_view():
    types = chair_types(5, range(4))
    assert torch.equal(types[2:3], chair_types(5, [2]))  # chair k depends on (seed, k) only
    assert not torch.equal(types, chair_types(6, range(4)))
    poses = orbit_poses(torch.zeros(4), torch.full((4,), 0.4), 3.0, (0.0, 0.0, 0.5))
    first, mask = render(types, poses, 16, 28.0)
    again, _ = render(types, poses, 16, 28.0)
    assert torch.equal(first, again) and first.shape == (4, 3, 16, 16) and mask.shape == (4, 1, 16, 16)
    assert 0 <= first.min() and first.max() <= 1 and 0 <= mask.min() and mask.max() <= 1
    turned, _ = render(types, orbit_poses(torch.full((4,), 1.0), torch.full((4,), 0.4), 3.0, (0.0, 0.0, 0.5)), 16, 28.0)
    assert ((first - turned).abs().flatten(1).mean(1) > 0.01).all()
    assert torch.equal(mask > 0, (first < 1).any(1, keepdim=True))  # the mask is where the chair is (all else white)


# ----------------------------------------------------------------------------- the dataset


def test_the_chairs_dataset_gives_every_factor_and_caches_its_renders(tmp_path, monkeypatch):
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path))
    data = build_dataset(DataConfig(name="chairs", image_size=16, max_images=60))
    batch = data.batch(torch.tensor([0, 1, 50]))
    assert set(batch) == {"image", "index", "label", "type", "chair", "view", "mask"} == set(data.keys)
    assert batch["image"].shape == (3, 3, 16, 16) and -1 <= batch["image"].min() and batch["image"].max() <= 1
    assert batch["chair"].tolist() == [0, 0, 1] and torch.equal(batch["label"], type_class(batch["type"]))
    assert data.info.num_types == 2 and data.info.type_dim == batch["type"].shape[1] and data.info.num_classes == 4
    azimuth, elevation = chair_data.split_views("train")
    assert torch.allclose(batch["view"][1], chair_data.view_code(azimuth[1], elevation[1]))
    truth, mask = chair_data.render_views(batch["type"][2:], azimuth[2:3], elevation[2:3], 16)
    assert torch.allclose(truth, batch["image"][2:], atol=1 / 127.5) and torch.allclose(mask, batch["mask"][2:], atol=1 / 255)
    test_azimuth, _ = chair_data.split_views("test")
    assert torch.allclose(test_azimuth - azimuth, torch.full_like(azimuth, math.pi / 24))  # unseen: halfway between
    cached = list((tmp_path / "data").glob("chairs-*.safetensors"))
    assert len(cached) == 1
    assert torch.equal(build_dataset(DataConfig(name="chairs", image_size=16, max_images=60)).images, data.images)
    cached[0].write_bytes(b"damaged")  # a damaged cache file is rendered again
    assert torch.equal(build_dataset(DataConfig(name="chairs", image_size=16, max_images=60)).images, data.images)
    grey = build_dataset(DataConfig(name="chairs", image_size=16, max_images=60, channels=1))
    assert grey.batch(torch.arange(2))["image"].shape == (2, 1, 16, 16)  # usable by every image family


# ----------------------------------------------------------------------------- the chairs generator


def test_unpooling_puts_each_value_in_the_top_left_of_a_block_of_zeros_and_up_convolution_is_unpool_then_conv():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert unpool(x).tolist() == [[[[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]]]
    layer = UpConvolution(3, 2)
    x = torch.randn(2, 3, 4, 5)
    weight = layer.conv.weight.flip(-1, -2).transpose(0, 1)  # the same 5 x 5 filters as a plain convolution's
    expected = torch.nn.functional.leaky_relu(torch.nn.functional.conv2d(unpool(x), weight, layer.conv.bias, padding=2), 0.2)
    assert torch.allclose(layer(x), expected, atol=1e-6) and expected.shape == (2, 2, 8, 10)


def test_the_loss_is_squared_error_of_image_plus_weighted_mask_and_capabilities_follow_the_code(tmp_path):
    from genzoo.api import make_trainer

    trainer = make_trainer(tiny_config("chairs", model={"mask_weight": 2.0}), tmp_path / "run", progress=False)
    model, batch = trainer.model, trainer.data.batch(torch.arange(8))
    image, mask = model.draw(batch["chair"], batch["view"])
    losses = model("main", batch)
    mse = (image - batch["image"]).pow(2).flatten(1).mean(1)
    mask_error = (mask - batch["mask"]).pow(2).flatten(1).mean(1)
    assert losses["total"].item() == pytest.approx((mse + 2.0 * mask_error).mean().item(), rel=1e-5)  # Eq. 1
    model.eval()
    with pytest.raises(GenzooError, match="code=identity"):
        model.generate(2, labels=torch.tensor([0, 1]))
    with pytest.raises(GenzooError, match="chairs 0..1"):
        model.render(torch.zeros(1), torch.zeros(1), chair=5)
    pictures = {p.name: p for p in model.pictures()}
    assert pictures["rotation"].images.shape == (2 * 2 * 12, 3, 16, 16)  # 2 known chairs: truth and model rows
    assert pictures["chair-interpolation"].images.shape == (8, 3, 16, 16)  # walks between chairs 0 and 1

    new = make_trainer(tiny_config("chairs", model={"code": "parameters"}), tmp_path / "types", progress=False).model.eval()
    assert new.requires[-1] == "type"
    images = new.generate(4, labels=torch.tensor([0, 1, 2, 3]), generator=torch.Generator().manual_seed(0))
    assert images.shape == (4, 3, 16, 16)  # chairs of each class, never seen
    assert new.render(torch.zeros(2), torch.zeros(2), chair=123).shape == (2, 3, 16, 16)


def test_render_writes_a_gif_of_the_orbit_and_refuses_what_cannot_render(tmp_path, capsys):
    from test_cli import genzoo

    from genzoo.api import train

    run = train(tiny_config("chairs"), tmp_path / "run", progress=False).path
    code, out, err = genzoo(capsys, "render", run, "--orbit", "5", "--chair", "1", "-o", tmp_path / "orbit.gif")
    assert code == 0, err
    with Image.open(tmp_path / "orbit.gif") as gif:  # (Pillow merges identical frames, adding their durations)
        durations = []
        for frame in range(gif.n_frames):
            gif.seek(frame)
            durations.append(gif.info["duration"])
        assert sum(durations) == 5 * 50 and gif.size == (16, 16)  # 5 frames of 50 ms (20 per second)
    code, out, err = genzoo(capsys, "render", run, "--orbit", "3", "-o", tmp_path / "orbit.png")
    assert code == 0 and Image.open(tmp_path / "orbit.png").size[0] > 3 * 16
    code, _, err = genzoo(capsys, "render", run, "--size", "32", "-o", tmp_path / "x.gif")
    assert code == 2 and "--size" in err


def test_every_image_family_trains_a_step_on_rendered_chairs(tmp_path):
    from genzoo.api import make_trainer
    from genzoo.registry import MODELS

    image_families = [name for name in MODELS.names()
                      if name not in ("chairs", "nerf", "latent-diffusion", "gan-cls")  # (those two need captions)
                      and MODELS.get(name).modality == "image"]
    extra = {"swap": {"domains": ["chair", "stool"]}, "cyclegan": {"domains": ["chair", "stool"]},
             "pix2pix": {"task": "denoise"}}  # chairs 0 and 1 are a chair and a stool: two domains
    for family in image_families:
        data = {"name": "chairs", "max_images": 96, **extra.get(family, {})}
        trainer = make_trainer(tiny_config(family, data=data), tmp_path / family, progress=False)
        sums: dict = {}
        trainer.train_step(sums)
        assert sums and all(torch.isfinite(value) for value in sums.values()), family
        trainer.lock.release()

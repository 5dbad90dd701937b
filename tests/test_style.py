"""Style transfer: known answers for the Gram matrix, the content, style and total-variation terms and
colour preservation; the feature networks; the procedure and `genzoo stylize` end to end, tiny."""

from __future__ import annotations

import json

import pytest
import torch

from genzoo.errors import GenzooError
from genzoo.losses import content_loss, gram_matrix, style_layer_loss, style_loss, total_variation
from genzoo.procedures.stylize import YIQ, match_luminance, rgb_to_yiq, with_chroma_of, yiq_to_rgb


def test_gram_matrix_by_hand():
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # N = 2 channels, M = 2 positions
    # G_ij = sum_k F_ik F_jk: [[1 + 4, 3 + 8], [3 + 8, 9 + 16]], divided by M = 2
    torch.testing.assert_close(gram_matrix(features), torch.tensor([[[2.5, 5.5], [5.5, 12.5]]]))


def test_content_loss_is_half_the_summed_squared_difference():
    f, p = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1), torch.tensor([0.0, 2.0, 5.0]).view(1, 3, 1, 1)
    assert content_loss(f, p).item() == pytest.approx(0.5 * (1 + 0 + 4))


def test_style_layer_loss_is_gatys_eq4_with_unnormalised_grams():
    torch.manual_seed(0)
    f, a = torch.randn(1, 4, 3, 5), torch.randn(1, 4, 3, 5)  # N = 4, M = 15
    n, m = 4, 15
    g_raw, a_raw = (f.view(n, m) @ f.view(n, m).T), (a.view(n, m) @ a.view(n, m).T)
    expected = ((g_raw - a_raw) ** 2).sum() / (4 * n**2 * m**2)  # E_l of Gatys et al., Eq. 4
    assert style_layer_loss(f, gram_matrix(a)).item() == pytest.approx(expected.item(), rel=1e-5)
    total = style_loss([f, f], [gram_matrix(a), gram_matrix(f)], [0.25, 0.75])  # Eq. 5: sum_l w_l E_l
    assert total.item() == pytest.approx(0.25 * expected.item(), rel=1e-5)


def test_total_variation_by_hand():
    x = torch.tensor([[0.0, 1.0], [3.0, 1.0]]).view(1, 1, 2, 2)
    # vertical: (3-0)^2 + (1-1)^2; horizontal: (1-0)^2 + (1-3)^2
    assert total_variation(x).item() == pytest.approx(9 + 0 + 1 + 4)
    assert total_variation(torch.full((1, 3, 5, 5), 0.3)).item() == 0


def test_colour_preservation_keeps_the_content_chroma_and_matches_luminance_statistics():
    torch.manual_seed(0)
    rgb = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(rgb)), rgb)  # the transform round-trips
    grey = torch.full((1, 3, 1, 1), 0.5, dtype=torch.float64)
    torch.testing.assert_close(rgb_to_yiq(grey).flatten(), torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64), atol=1e-6, rtol=0)
    assert YIQ[0].tolist() == [0.299, 0.587, 0.114]  # Y is ITU-R 601 luma
    content, luminance = torch.rand(1, 3, 4, 4, dtype=torch.float64), torch.rand(1, 1, 4, 4, dtype=torch.float64)
    combined = rgb_to_yiq(with_chroma_of(luminance, content))  # the result's Y, the content's I and Q
    torch.testing.assert_close(combined[:, :1], luminance)
    torch.testing.assert_close(combined[:, 1:], rgb_to_yiq(content)[:, 1:])
    style_y, content_y = torch.rand(1, 1, 8, 8) * 0.2, torch.rand(1, 1, 8, 8) * 0.8 + 0.1
    matched = match_luminance(style_y, content_y)  # sigma_c / sigma_s (L_s - mu_s) + mu_c
    assert matched.mean().item() == pytest.approx(content_y.mean().item(), abs=1e-6)
    assert matched.std().item() == pytest.approx(content_y.std().item(), rel=1e-5)


def test_random_network_is_fixed_by_its_seed_and_names_itself_as_not_vgg():
    from genzoo.procedures.style_networks import NETWORKS

    a, b = NETWORKS["random"](None), NETWORKS["random"](None)
    assert torch.equal(a.module.weights, b.module.weights)
    assert "random" in a.name and "not VGG" in a.name
    out = a(torch.zeros(1, 3, 20, 20), {"scale0", "scale4"})
    assert out["scale0"].shape == (1, 128, 20, 20) and out["scale4"].shape == (1, 128, 1, 1)
    with pytest.raises(GenzooError, match="no layer"):
        a(torch.zeros(1, 3, 8, 8), {"relu4_2"})


def test_vgg19_is_torchvisions_architecture_loads_a_state_dict_and_refuses_others(tmp_path, monkeypatch):
    """No VGG weights exist here: a state dict of torchvision's vgg19 layout with random values stands in."""
    from safetensors.torch import save_file

    from genzoo.procedures.style_networks import VGG19Features, vgg19_network

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache
    with pytest.raises(GenzooError, match="vgg19-dcbb9e9d.pth"):
        vgg19_network(None)
    torch.manual_seed(0)
    reference = VGG19Features(pooling="max").features
    state = {f"features.{k}": v for k, v in reference.state_dict().items()}
    path = tmp_path / "vgg19.safetensors"
    save_file(state, str(path))
    network = vgg19_network(str(path))
    assert network.name.startswith("VGG-19") and network.content_layer == "relu4_2"
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    normalised = ((x + 1) / 2 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(network(x, {"relu1_1"})["relu1_1"], reference[:2](normalised))  # ImageNet norm inside
    save_file({"features.0.weight": torch.zeros(8, 3, 3, 3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(GenzooError, match="does not hold VGG-19 weights"):
        vgg19_network(str(tmp_path / "other.safetensors"))


def test_texture_synthesis_lowers_the_style_loss_with_lbfgs_and_adam(tmp_path):
    from genzoo.api import run_procedure

    for optimizer in ("lbfgs", "adam"):
        run = run_procedure("stylize", tmp_path / optimizer, overrides={
            "style": "skimage:brick", "size": 16, "steps": 8, "optimizer": optimizer, "snapshot_every": 4}, progress=False)
        records = [json.loads(line) for line in run.log.read_text().splitlines()]
        assert [r["step"] for r in records] == list(range(1, 9))
        assert records[-1]["stylize/style"] < 0.5 * records[0]["stylize/style"], optimizer
        result = json.loads((run.path / "result.json").read_text())
        assert "random multi-scale" in result["network"] and result["content"].startswith("none")
        assert {"result.png", "progress.png", "style-0.png"} <= {p.name for p in (run.path / "pictures").iterdir()}
        assert (run.path / "report.html").is_file()


def test_stylize_command_writes_the_image_and_is_exactly_reproducible(tmp_path, capsys):
    from PIL import Image

    from test_cli import genzoo

    common = ["skimage:chelsea", "skimage:gravel", "--size", "16", "--steps", "3", "--no-progress",
              "--preserve-colour", "--tv-weight", "1"]
    for name in ("a", "b"):
        code, out, err = genzoo(capsys, "stylize", *common, "-o", tmp_path / f"{name}.png", "--run-dir", tmp_path / name)
        assert code == 0, err
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert Image.open(tmp_path / "a.png").size[0] >= 16 and "random multi-scale" in out
    result = json.loads((tmp_path / "a" / "result.json").read_text())
    assert result["preserve_colour"] is True and "final_tv" in result


def test_several_styles_and_a_sweep(tmp_path):
    from genzoo.procedures.stylize import stylize

    run = stylize("skimage:coffee", ["skimage:brick", "skimage:gravel"], tmp_path / "out.png", out=tmp_path / "run",
                  size=16, steps=2, sweep=[10.0, 1000.0], style_blend=[3, 1], optimizer="adam", progress=False)
    assert (tmp_path / "out.png").is_file() and (run.path / "pictures" / "sweep.png").is_file()
    record = json.loads(run.log.read_text().splitlines()[-1])
    assert {"beta=10/style", "beta=1000/style"} <= set(record)

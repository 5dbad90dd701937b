"""The FID Inception-v3 against pytorch-fid and torch-fidelity, with random weights (no download).

A fixed-seed state dict with calibrated, then randomised BatchNorm statistics is saved to a file,
loaded through `load_inception` and into each reference; the same uint8 images must give the same
2048-d pool3 features (and 1008 logits) to 1e-4 relative error.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from genzoo.errors import GenzooError
from genzoo.metrics.features import load_features
from genzoo.metrics.folders import load_folder
from genzoo.metrics.inception import FEATURE_DIM, NUM_CLASSES, RESIZE, FIDInceptionV3, load_inception
from genzoo.io import sha256

TOLERANCE = 1e-4


def _relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours.double() - theirs.double()).norm() / theirs.double().norm()).item()


def _uint8_images(n: int, size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=generator, dtype=torch.uint8)  # (n, 3, size, size)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine, 2 threads run these 299 px forwards ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A non-trivial random state dict: default init, random BN affine, BN statistics measured on noise, jittered.

    Measuring the running statistics keeps every layer's activations near unit scale, so the 2048 features are
    of order 1 and differ between images (uncalibrated random statistics blow up or die out over 94 layers).
    """
    torch.manual_seed(0)
    network = FIDInceptionV3()
    batch_norms = [module for module in network.modules() if isinstance(module, nn.BatchNorm2d)]
    with torch.no_grad():
        for batch_norm in batch_norms:
            batch_norm.momentum = None  # running stats = plain average of the batches seen
            batch_norm.weight.uniform_(0.5, 1.5)
            batch_norm.bias.uniform_(-0.2, 0.2)
        network.train()(torch.rand(1, 3, 64, 64) * 2 - 1)  # measure running_mean, running_var
        for batch_norm in batch_norms:
            batch_norm.running_var.mul_(torch.empty_like(batch_norm.running_var).uniform_(0.8, 1.25))
        network.fc.bias.normal_()
    state_dict = {key: value.clone() for key, value in network.state_dict().items()}
    path = tmp_path_factory.mktemp("inception") / "random_inception.pth"
    torch.save(state_dict, path)
    return path, state_dict


@pytest.fixture(scope="module")
def genzoo_inception(random_weights):
    path, _ = random_weights
    network, digest = load_inception(path)
    assert digest == sha256(path)
    return network


@pytest.fixture(scope="module")
def pytorch_fid_network(random_weights):
    inception = pytest.importorskip("pytorch_fid.inception")
    _, state_dict = random_weights
    with pytest.MonkeyPatch.context() as patch:  # fid_inception_v3() would download the real weights
        patch.setattr(inception, "load_state_dict_from_url", lambda *args, **kwargs: state_dict)
        network = inception.InceptionV3([3], resize_input=True, normalize_input=True, use_fid_inception=True)
        backbone = inception.fid_inception_v3()
    return network.eval(), backbone


@pytest.fixture(scope="module")
def torch_fidelity_extractor(random_weights):
    fidelity = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    return fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                                feature_extractor_weights_path=str(random_weights[0]))


def test_features_match_pytorch_fid(genzoo_inception, pytorch_fid_network):
    network, _ = pytorch_fid_network
    images = _uint8_images(2, 64, seed=1)  # (2, 3, 64, 64): resized to 299 on both sides
    with torch.no_grad():
        theirs = network(images.float() / 255)[0].flatten(1)  # (2, 2048); pytorch-fid takes [0, 1]
        ours = genzoo_inception(images)  # uint8 accepted as is
    assert ours["features"].shape == (2, FEATURE_DIM) and ours["logits"].shape == (2, NUM_CLASSES)
    assert theirs.std() > 0.1 and (theirs[0] - theirs[1]).norm() > 0.1 * theirs.norm()  # non-degenerate features
    assert _relative_error(ours["features"], theirs) < TOLERANCE


class _Stop(Exception):
    pass


def _stem_input(network: FIDInceptionV3, images: torch.Tensor) -> torch.Tensor:
    """What the first convolution sees, without running the rest of the network."""
    seen = []

    def capture(module, inputs):
        seen.append(inputs[0])
        raise _Stop

    handle = network.Conv2d_1a_3x3.register_forward_pre_hook(capture)
    try:
        network(images)
    except _Stop:
        pass
    finally:
        handle.remove()
    return seen[0]


def test_grey_and_uint8_inputs_reach_the_stem_as_rgb_in_minus_one_one(genzoo_inception):
    grey = _uint8_images(1, 64, seed=3)[:, :1]  # (1, 1, 64, 64)
    stem = _stem_input(genzoo_inception, grey.float() / 127.5 - 1)  # (1, 3, 299, 299)
    assert stem.shape == (1, 3, 299, 299)
    assert torch.equal(stem, _stem_input(genzoo_inception, grey.repeat(1, 3, 1, 1).float() / 127.5 - 1))
    assert torch.allclose(stem, _stem_input(genzoo_inception, grey), atol=1e-6)  # uint8 as u / 255 * 2 - 1


def test_features_and_logits_match_torch_fidelity(genzoo_inception, torch_fidelity_extractor):
    # torch-fidelity resizes with TF1's bilinear rule and scales uint8 as (u - 128) / 128; pytorch-fid and genzoo
    # use PyTorch's bilinear rule and u / 255 * 2 - 1. At 299 px nothing is resized, and genzoo is given
    # fidelity's scaling, so the two networks see the same input.
    smooth = F.interpolate(_uint8_images(2, 64, seed=2).float(), size=(299, 299), mode="bilinear")  # as calibrated
    images = smooth.round().to(torch.uint8)  # (2, 3, 299, 299)
    with torch.no_grad():
        features, logits_unbiased = torch_fidelity_extractor(images)  # (2, 2048), (2, 1008)
        ours = genzoo_inception((images.float() - 128) / 128)  # float in [-1, 1)
    assert _relative_error(ours["features"], features) < TOLERANCE
    assert _relative_error(ours["logits"], logits_unbiased) < TOLERANCE


def test_state_dict_keys_equal_pytorch_fid_and_torch_fidelity(pytorch_fid_network, torch_fidelity_extractor):
    _, backbone = pytorch_fid_network
    with torch.device("meta"):
        ours = {key: tuple(value.shape) for key, value in FIDInceptionV3().state_dict().items()}
    assert ours == {key: tuple(value.shape) for key, value in backbone.state_dict().items()}
    assert ours == {key: tuple(value.shape) for key, value in torch_fidelity_extractor.state_dict().items()}
    assert ours["fc.weight"] == (NUM_CLASSES, FEATURE_DIM)


def _assert_one_sentence(error: pytest.ExceptionInfo) -> None:
    message = str(error.value)
    assert message.endswith(".") and "\n" not in message and ". " not in message, message
    assert "GENZOO_INCEPTION" in message


def test_bad_weights_files_raise_one_sentence(tmp_path, random_weights):
    text = tmp_path / "notes.txt"
    text.write_text("not weights\n")
    linear = tmp_path / "linear.pth"
    torch.save(nn.Linear(3, 2).state_dict(), linear)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    misshapen = tmp_path / "misshapen.pth"
    state_dict = dict(random_weights[1])
    state_dict["fc.weight"] = torch.zeros(1000, FEATURE_DIM)  # torchvision's 1000-class head
    torch.save(state_dict, misshapen)
    for path in (tmp_path / "missing.pth", tmp_path, text, linear, tensor, misshapen):
        with pytest.raises(GenzooError) as error:
            load_inception(path)
        _assert_one_sentence(error)


def test_environment_variable_and_failed_download(monkeypatch, random_weights):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.delenv("GENZOO_INCEPTION", raising=False)
    with pytest.raises(GenzooError) as error:
        load_inception(None)
    _assert_one_sentence(error)
    monkeypatch.setenv("GENZOO_INCEPTION", str(random_weights[0]))
    _, digest = load_inception(None)
    assert digest == sha256(random_weights[0])


# ----------------------------------------------------------------------------------------------------
# Folders: pytorch-fid's own pipeline, on images that are not square
# ----------------------------------------------------------------------------------------------------


def _image_folder(path: Path, sizes: list[tuple[int, int]], seed: int) -> Path:
    """Smooth random RGB PNGs of the given (width, height)."""
    generator = torch.Generator().manual_seed(seed)
    path.mkdir()
    for i, (width, height) in enumerate(sizes):
        coarse = torch.rand(1, 3, height // 8 + 1, width // 8 + 1, generator=generator)
        smooth = F.interpolate(coarse, size=(height, width), mode="bilinear")[0]  # (3, height, width)
        Image.fromarray((smooth.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()).save(path / f"{i}.png")
    return path


def test_folders_go_through_pytorch_fids_pipeline(tmp_path, random_weights, pytorch_fid_network):
    from pytorch_fid.fid_score import get_activations

    folder = _image_folder(tmp_path / "images", [(64, 48), (40, 56)], seed=4)
    model, _ = pytorch_fid_network
    files = sorted(folder.glob("*.png"))  # one file at a time: pytorch-fid cannot batch images of several sizes
    theirs = torch.cat([torch.from_numpy(get_activations([f], model, batch_size=1, num_workers=0)) for f in files])
    network = load_features("inception", str(random_weights[0]))
    images, description = load_folder(folder, network, "pytorch-fid")
    ours = network(images.batch(torch.arange(2))["image"])["features"]  # (2, 2048)
    print(f"pytorch-fid pipeline vs pytorch-fid: {_relative_error(ours, theirs):.1e}")
    assert _relative_error(ours, theirs) < TOLERANCE and "no crop" in description
    cropped, description = load_folder(folder, network, "crop")  # the clean-fid-like option
    other = network(cropped.batch(torch.arange(2))["image"])["features"]
    print(f"crop pipeline vs pytorch-fid: {_relative_error(other, theirs):.1e}")
    assert _relative_error(other, theirs) > 1e-2 and "centre crop" in description


def test_folder_evaluation_with_inception_defaults_to_pytorch_fids_pipeline(tmp_path, random_weights):
    from genzoo.metrics.evaluate import evaluate_folders

    folder = _image_folder(tmp_path / "images", [(64, 48)], seed=5)
    score, _ = evaluate_folders(folder, folder, ["variety"], extractor="inception", extractor_weights=str(random_weights[0]))
    assert score.protocol["folder_resize"] == "pytorch-fid" and score.protocol["resize"] == RESIZE
    assert "as RGB at its own size" in score.protocol["folder_pipeline"]
    with pytest.raises(GenzooError):
        evaluate_folders(folder, folder, ["variety"], extractor="inception", extractor_weights=str(random_weights[0]),
                         folder_resize="bicubic")

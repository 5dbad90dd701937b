"""Pythia 8 jet images (genzoo/data/jets.py, the physics extra): the image's known answers on hand-made
constituents, the pixel scale, Pythia and FastJet at a few dozen jets (determinism, the jet's four-momentum
and the image's total pT against the constituents, the axis at the centre, gluon jets wider than quark
jets, the tune's settings and the "data" conditions' shift), the datasets' refusals, and DANN and a
conditional GAN trained on them. Pythia and FastJet are in the test extra: these tests skip only where
that extra is not installed."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

pythia8mc = pytest.importorskip("pythia8mc")
fastjet = pytest.importorskip("fastjet")

import genzoo as gz  # noqa: E402
from genzoo.api import make_trainer  # noqa: E402
from genzoo.config import DataConfig, build_config, load_config  # noqa: E402
from genzoo.data import build_dataset  # noqa: E402
from genzoo.data.jets import (DATA, HALF_WIDTH, PIXELS, PT_WINDOW, SIMULATION, decode, encode, generate,  # noqa: E402
                              jet_image, kinematics, leading_jet, observables, pixel_centres, pythia,
                              visible_particles)
from genzoo.errors import DataError  # noqa: E402
from conftest import TINY_MODELS  # noqa: E402
from test_cli import genzoo  # noqa: E402

PITCH = 2 * HALF_WIDTH / PIXELS  # 0.032
N = 24  # jets per sample: about 1 s each on one idle core


@pytest.fixture(scope="module")
def samples() -> dict[str, dict]:
    """N quark and N gluon jets under simulation, 16 gluon jets under "data" (seeds 11, 12, 12)."""
    return {"quark": generate(0, N, seed=11), "gluon": generate(1, N, seed=12),
            "gluon data": generate(1, 16, seed=12, conditions=DATA)}


@pytest.fixture(scope="module")
def jet_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jet-cache")


@pytest.fixture(autouse=True)
def _shared_jet_cache(jet_cache, monkeypatch):
    """The datasets of this module are made once and shared by its tests (conftest gives each test its own cache)."""
    monkeypatch.setenv("GENZOO_CACHE", str(jet_cache))


def test_a_jet_image_of_hand_made_constituents():
    # the axis at (eta, phi) = (1.0, 3.1): a constituent on it, one at +0.1 in eta, one across phi = +-pi, one outside
    pt = np.array([50.0, 20.0, 10.0, 5.0])
    eta = np.array([1.0, 1.1, 1.0, 1.5])
    phi = np.array([3.1, 3.1, -3.1, 3.1])  # -3.1 is 2 pi - 6.2 = 0.0832 beyond 3.1
    image = jet_image(pt, eta, phi, 1.0, 3.1)
    assert image.shape == (25, 25) and pixel_centres()[12] == pytest.approx(0.0)
    assert image[12, 12] == 50.0  # the axis: the centre of the middle pixel
    assert image[15, 12] == 20.0  # floor((0.1 + 0.4) / 0.032) = 15
    assert image[12, 15] == 10.0  # floor((0.0832 + 0.4) / 0.032) = 15
    assert image.sum() == 80.0  # Delta eta = 0.5 is outside [-0.4, 0.4]
    obs = {k: float(v[0]) for k, v in observables(torch.from_numpy(image)[None]).items()}
    assert obs["pt"] == 80.0 and obs["pixels"] == 3
    assert obs["centroid_eta"] == pytest.approx(20 / 80 * 3 * PITCH) and obs["centroid_phi"] == pytest.approx(10 / 80 * 3 * PITCH)
    assert obs["girth"] == pytest.approx((20 + 10) / 80 * 3 * PITCH)  # sum pT_i dR_i / sum pT_i, pixel centres
    padded = torch.nn.functional.pad(torch.from_numpy(image), (3, 4, 3, 4))[None]  # data.pad_to=32
    assert observables(padded)["girth"][0] == pytest.approx(obs["girth"])  # the axis is pixel 15 of 32


def test_the_pixel_scale_round_trips_within_half_a_step():
    pt = torch.tensor([0.0, 0.05, 0.4, 3.0, 40.0, 150.0, 500.0])
    back = decode(encode(pt).double()[None] / 127.5 - 1)[0]
    step = np.log1p(200.0 / 0.01) / 255  # in log(1 + pT / 10 MeV)
    assert back[0] == 0
    assert ((back[1:6] - pt[1:6].double()).abs() / (pt[1:6].double() + 0.01) <= np.expm1(step / 2) + 1e-9).all()
    assert back[6] == pytest.approx(200.0)  # saturation
    three = decode(encode(pt).double().expand(3, -1)[None, :, None, :] / 127.5 - 1)  # data.channels=3: the same grid
    assert torch.allclose(three[0, 0], back)


def test_identical_seeds_give_identical_jets_and_others_differ(samples):
    again = generate(1, 2, seed=12, conditions=DATA)  # the first 2 jets of the same stream, smearing included
    assert np.array_equal(again["image"], samples["gluon data"]["image"][:2])
    assert np.array_equal(again["pt"], samples["gluon data"]["pt"][:2])
    other = generate(1, 2, seed=13, conditions=DATA)
    assert not np.array_equal(other["image"], again["image"])


def test_the_jet_is_the_sum_of_its_constituents_and_the_image_holds_their_pt():
    generator = pythia(1, seed=3)
    checked = 0
    while checked < 8:
        assert generator.next()
        momenta = visible_particles(generator.event)  # (M, 4)
        pt_jet, eta_jet, phi_jet, mass, indices = leading_jet(momenta)
        constituents = momenta[indices]
        total = constituents.sum(0)  # E-scheme: the jet's four-momentum is its constituents' sum
        assert np.hypot(total[0], total[1]) == pytest.approx(pt_jet, rel=1e-9)
        assert np.sqrt(max(total[3] ** 2 - (total[:3] ** 2).sum(), 0)) == pytest.approx(mass, rel=1e-6, abs=1e-6)
        # the image: the constituents' pT in the window, computed here from their momenta
        pt = np.hypot(constituents[:, 0], constituents[:, 1])
        eta = np.arctanh(constituents[:, 2] / np.linalg.norm(constituents[:, :3], axis=1))
        phi = np.arctan2(constituents[:, 1], constituents[:, 0])
        d_phi = (phi - phi_jet + np.pi) % (2 * np.pi) - np.pi
        inside = (np.abs(eta - eta_jet) < HALF_WIDTH) & (np.abs(d_phi) < HALF_WIDTH)
        image = jet_image(*kinematics(constituents), eta_jet, phi_jet)
        assert image.sum() == pytest.approx(pt[inside].sum(), rel=1e-12)
        assert pt[inside].sum() >= 0.95 * pt.sum()  # an anti-kT R = 0.4 jet lies (almost) within the 0.8 x 0.8 window
        assert pt.sum() >= pt_jet * (1 - 1e-9)  # a scalar sum is at least the vector sum's length
        checked += 1


def test_jets_are_in_the_window_centred_and_gluons_are_wider_than_quarks(samples):
    quark, gluon = samples["quark"], samples["gluon"]
    for jets in samples.values():
        assert ((jets["pt"] >= PT_WINDOW[0]) & (jets["pt"] < PT_WINDOW[1])).all() and (np.abs(jets["eta"]) < 2).all()
        obs = observables(torch.from_numpy(jets["image"]))
        assert (obs["pt"] > 0.9 * torch.from_numpy(jets["pt"])).all()  # the window holds nearly all of the jet's pT
        centroid = torch.hypot(obs["centroid_eta"], obs["centroid_phi"])
        assert centroid.mean() < 0.25 * PITCH and centroid.max() < 1.5 * PITCH  # the axis is the image's centre
    q, g = (observables(torch.from_numpy(jets["image"])) for jets in (quark, gluon))
    # gluons radiate more (colour factor C_A = 3 against C_F = 4/3): more constituents, wider jets. Measured at
    # 300 jets each: 20.8 +- 0.4 against 28.7 +- 0.5 constituents, girth 0.061 +- 0.002 against 0.090 +- 0.002
    assert gluon["constituents"].mean() > quark["constituents"].mean() + 3
    assert g["pixels"].mean() > q["pixels"].mean() + 3
    assert g["girth"].mean() > 1.2 * q["girth"].mean()


def test_the_data_conditions_change_the_tune_and_shift_the_jets(samples):
    tunes = {}
    for tune in (14, 25):
        generator = pythia8mc.Pythia("", False)
        assert generator.readString(f"Tune:pp = {tune}")
        tunes[tune] = [generator.settings.parm(k) for k in ("SigmaProcess:alphaSvalue", "TimeShower:alphaSvalue",
                                                           "MultipartonInteractions:pT0Ref")]
    assert tunes == {14: [0.130, 0.1365, 2.28], 25: [0.140, 0.139, 2.09]}  # Monash 2013; ATLAS A14 variation 2+
    assert (SIMULATION.tune, DATA.tune) == (14, 25)
    # "data": particles under 0.5 GeV lost and the rest smeared: fewer constituents (measured at 300 jets: 24.8 +- 0.4
    # against 29.0 +- 0.5 for gluons); the tune alone moves them by about 1.6 (+- 0.7), which 16 jets cannot see
    sim, data = samples["gluon"], samples["gluon data"]
    assert data["constituents"].mean() < sim["constituents"].mean() - 2
    assert data["constituents"].min() >= 1


def test_jet_datasets_are_balanced_and_refuse_resizing_and_too_few_jets():
    data = build_dataset(DataConfig(name="jets", max_images=8))
    assert data.images.shape == (8, 1, 25, 25) and data.class_names == ["quark", "gluon"]
    assert torch.bincount(data.labels).tolist() == [4, 4] and data.split == "train"
    assert build_dataset(DataConfig(name="jets", max_images=8, channels=3)).images.shape == (8, 3, 25, 25)
    padded = build_dataset(DataConfig(name="jets", max_images=8, pad_to=32)).images
    assert padded.shape == (8, 1, 32, 32) and torch.equal(padded[:, :, 3:28, 3:28], data.images)
    with pytest.raises(DataError, match="cannot be resized"):
        build_dataset(DataConfig(name="jets", image_size=28, max_images=16))
    with pytest.raises(DataError, match="cannot be resized"):
        build_dataset(DataConfig(name="fake", image_size=16, max_images=10, target="jets-data"))
    with pytest.raises(DataError, match="at least 2"):
        build_dataset(DataConfig(name="jets-data", max_images=1))


def test_without_the_physics_extra_the_datasets_say_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # as if the extra were not installed: `import pythia8mc` fails
    with pytest.raises(DataError, match=r"physics extra .*pythia8mc is missing.*run `pip install genzoo\[physics\]`"):
        build_dataset(DataConfig(name="jets-data", max_images=4, split="test"))


def test_dann_adapts_from_jets_to_jets_data_through_the_cli(tmp_path, capsys):
    code, out, err = genzoo(capsys, "train", "dann", "data.name=jets", "data.target.name=jets-data", "data.max_images=8",
                            "data.target.max_images=8", *(f"model.{k}={v}" for k, v in TINY_MODELS["dann"].items()),
                            "train.steps=2", "train.batch_size=8", "--no-progress", "--out", tmp_path / "dann")
    assert code == 0, err
    config = json.loads((tmp_path / "dann" / "config.json").read_text())
    assert config["data"]["channels"] == 3 and config["data"]["target"]["name"] == "jets-data"


def test_a_conditional_gan_trains_on_jets_padded_to_32(tmp_path):
    raw = load_config("calo-gan").model_dump(mode="json")  # the fast-simulation preset, on jets
    raw["model"].update(TINY_MODELS["gan"])
    raw["data"].update(name="jets", max_images=8, pad_to=32)
    raw["train"].update(steps=2, batch_size=8, log_every=1, sample_every=1, eval_every=None, eval_metrics=[])
    run = make_trainer(build_config(raw), tmp_path / "gan", progress=False).fit()
    model = gz.load(run.path)
    assert model.conditional and model.num_classes == 2
    fake = decode(model.generate(4, labels=torch.tensor([0, 1, 0, 1])).detach())  # (4, 32, 32) GeV
    assert fake.shape == (4, 32, 32) and torch.isfinite(fake).all() and (fake >= 0).all()

"""The toy calorimeter and the physics metrics: the simulator's known answers (energy, resolution, mean
depth, determinism), the pixel scale, the observables on hand-made showers, W1, separation power, FPD
and KPD against direct computations with scipy and scikit-learn, the ROC AUC, and the metrics end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import linalg
from scipy.optimize import curve_fit
from scipy.stats import iqr, wasserstein_distance
from sklearn.metrics import roc_auc_score
from sklearn.metrics.pairwise import polynomial_kernel

import genzoo as gz
from genzoo.api import make_trainer
from genzoo.config import DataConfig, build_config, load_config
from genzoo.data import build_dataset
from genzoo.data.calo import DATA, SIMULATION, Detector, decode, em_parameters, encode, simulate
from genzoo.errors import DataError, GenzooError
from genzoo.metrics.physics import (classifier_auc, frechet_physics_distance, kernel_physics_distance, observables,
                                    roc_auc, separation_power, wasserstein_1d)
from conftest import TINY_MODELS, tiny_config

CONTAINED = dict(layers=(0.0, 3.0, 19.0, 200.0), cell_size=50.0, noise=0.0, threshold=0.0)  # nothing leaks or is cut


def test_identical_seeds_give_identical_showers_and_others_differ():
    a = simulate(["e-", "pi+", "gamma"], [10, 50, 20], seed=3)
    assert a.shape == (3, 3, 16, 16) and a.dtype == np.float32
    assert np.array_equal(a, simulate(["e-", "pi+", "gamma"], [10, 50, 20], seed=3))
    assert not np.array_equal(a, simulate(["e-", "pi+", "gamma"], [10, 50, 20], seed=4))
    assert (a >= 0).all() and (a[a > 0] >= SIMULATION.threshold).all()  # zero suppression


def test_a_contained_electron_deposits_the_sampling_fraction_with_the_stochastic_resolution():
    detector = Detector(**CONTAINED)
    energy, n = 50.0, 400
    totals = simulate(["e-"] * n, [energy] * n, seed=0, detector=detector).sum((1, 2, 3), dtype=np.float64)
    expected_sigma = detector.sampling_fraction * energy * detector.stochastic_em / np.sqrt(energy)  # f_s E s / sqrt(E)
    assert abs(totals.mean() - detector.sampling_fraction * energy) < 4 * expected_sigma / np.sqrt(n)
    assert totals.std() / totals.mean() == pytest.approx(detector.stochastic_em / np.sqrt(energy), rel=0.12)


def test_the_mean_depth_of_an_electromagnetic_shower_is_a_over_b():
    slices = tuple(np.arange(0, 60.5, 0.5))  # 120 layers of 0.5 X0: the longitudinal profile itself
    detector = Detector(layers=slices, gains=(1.0,) * 120, cells=1, cell_size=1e4, noise=0.0, threshold=0.0,
                        fluctuations=False)
    energy, n = 20.0, 200
    showers = simulate(["e-"] * n, [energy] * n, seed=1, detector=detector)  # (n, 120, 1, 1)
    profile = showers.sum((0, 2, 3), dtype=np.float64)
    centres = (np.asarray(slices[1:]) + np.asarray(slices[:-1])) / 2
    a, b = em_parameters(np.array([energy]))
    assert (profile * centres).sum() / profile.sum() == pytest.approx(float(a[0] / b[0]), abs=0.1)  # t_mean = a / b
    assert float((a[0] - 1) / b[0]) == pytest.approx(np.log(energy / 0.0074) - 0.5)  # t_max = ln(E / E_c) - 0.5


def test_data_conditions_shift_the_showers_as_stated():
    sim = simulate(["e-"] * 300, [50.0] * 300, seed=2)
    data = simulate(["e-"] * 300, [50.0] * 300, seed=2, detector=DATA)
    assert (data[:, 1, 6, 9] == 0).all() and (sim[:, 1, 6, 9] > 0).any()  # the dead cell
    assert data.sum((1, 2, 3)).mean() < 0.97 * sim.sum((1, 2, 3)).mean()  # gains below 1
    width = lambda showers: observables(torch.from_numpy(showers))["width_1"].mean()  # noqa: E731
    assert width(data) > 1.1 * width(sim)  # broader


def test_energies_outside_the_range_and_unknown_particles_are_refused():
    with pytest.raises(GenzooError, match=r"500 GeV is outside the simulated range \[1, 200\] GeV"):
        simulate(["e-"], [500.0])
    with pytest.raises(GenzooError, match="unknown particle 'mu-'"):
        simulate(["mu-"], [10.0])


def test_the_pixel_scale_round_trips_within_half_a_step():
    energies = torch.tensor([0.0, 0.01, 0.025, 0.2, 3.0, 40.0, 80.0])  # 0.025: above the threshold after rounding
    images = encode(energies).double() / 127.5 - 1
    back = decode(images)
    assert back[0] == 0 and back[1] == 0  # under the threshold
    step = np.log1p(50.0 / 0.001) / 255  # in log(1 + E / 1 MeV)
    relative = (back[2:6] - energies[2:6].double()).abs() / (energies[2:6].double() + 0.001)
    assert (relative <= np.expm1(step / 2) + 1e-9).all()
    assert back[6] == pytest.approx(50.0)  # saturation


def test_observables_of_a_hand_made_shower():
    shower = torch.zeros(1, 3, 16, 16)
    shower[0, 0, 7, 7] = 1.0
    shower[0, 1, 7, 7] = 2.0
    shower[0, 1, 7, 9] = 2.0  # two equal cells in the middle layer, two columns apart
    shower[0, 2, 0, 0] = 1.0
    obs = {k: float(v[0]) for k, v in observables(shower).items()}
    assert obs["energy"] == 6.0 and obs["energy_1"] == 4.0 and obs["fraction_0"] == pytest.approx(1 / 6)
    assert obs["depth"] == pytest.approx((1.5 * 1 + 11 * 4 + 22 * 1) / 6)  # layer centres 1.5, 11, 22 X0
    assert obs["width_0"] == 0 and obs["width_2"] == 0
    assert obs["width_1"] == pytest.approx(np.sqrt((1.0 + 0.0) / 2))  # var_x = 1, var_y = 0
    assert obs["centroid_x"] == pytest.approx(0.5) and obs["centroid_y"] == pytest.approx(-0.5)  # cells 8 and 7 of 0..15
    assert obs["occupancy_1"] == pytest.approx(2 / 256)
    empty = observables(torch.zeros(2, 3, 16, 16))
    assert all(torch.isfinite(v).all() and (v == 0).all() for v in empty.values())


def test_wasserstein_and_separation_power_against_hand_values_and_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 300), rng.normal(0.5, 2, 170)
    assert wasserstein_1d(a, b) == pytest.approx(wasserstein_distance(a, b), rel=1e-12)
    assert wasserstein_1d([0, 0], [3, 3]) == 3.0
    assert separation_power(a, a) == 0.0
    # all of fake lies above the real range [0.045, 8.955] and lands in the end bin, which also holds the real 9:
    # S = 1/2 (9 x 0.1 (the other real bins) + (0.1 - 1)^2 / 1.1) = 9/11; disjoint ranges within the bins give 1
    assert separation_power(np.arange(10.0), np.arange(10) + 100.0) == pytest.approx(9 / 11)
    assert separation_power(np.repeat([0.0, 1.0], 50), np.full(20, 0.5), bins=3) == pytest.approx(1.0)
    # two bins: h = (1/2, 1/2), g = (1/4, 3/4): S = 1/2 ((1/4)^2 / (3/4) + (1/4)^2 / (5/4))
    real, fake = np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 1.0, 1.0, 1.0])
    assert separation_power(real, fake, bins=2) == pytest.approx(0.5 * (1 / 16 / 0.75 + 1 / 16 / 1.25))


def _fpd_direct(x, y, min_samples, max_samples, num_batches=20, num_points=10, seed=42):
    """The same definition computed directly with scipy (sqrtm, curve_fit with bounds)."""
    scale = np.abs(x).max(0)
    x, y = x / scale, y / scale
    sizes = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    means = []
    for size in sizes:
        values = []
        for _ in range(num_batches):
            a, b = x[rng.choice(len(x), size=size)], y[rng.choice(len(y), size=size)]
            s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
            covmean = linalg.sqrtm(s1 @ s2).real
            values.append(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
        means.append(np.mean(values))
    params, covariance = curve_fit(lambda t, c, s: c + s * t, 1 / sizes, means, bounds=([0, 0], [np.inf, np.inf]),
                                   ftol=1e-15, xtol=1e-15, gtol=1e-15)  # jetnet's fit, to convergence
    return params[0], np.sqrt(covariance[0, 0])


def test_fpd_and_kpd_agree_with_a_direct_computation():
    rng = np.random.default_rng(1)
    real = rng.normal([1.0, 5.0, -2.0], [1.0, 2.0, 0.5], size=(600, 3))
    fake = rng.normal([1.3, 5.0, -2.0], [1.0, 2.5, 0.5], size=(500, 3))
    value, error = frechet_physics_distance(real, fake, min_samples=200, max_samples=500)
    expected, expected_error = _fpd_direct(real, fake, 200, 500)
    assert value == pytest.approx(expected, rel=1e-5) and error == pytest.approx(expected_error, rel=1e-3)
    assert frechet_physics_distance(real, real, min_samples=200, max_samples=500)[0] < 0.1 * value
    median, spread = kernel_physics_distance(real, fake, num_batches=6, batch_size=200)
    scale = np.abs(real).max(0)
    values = []
    for i in range(6):
        draw = np.random.default_rng(42 + i * 1000)
        a, b = real[draw.choice(600, size=200)] / scale, fake[draw.choice(500, size=200)] / scale
        k = lambda p, q: polynomial_kernel(p, q, degree=4, gamma=1 / 3, coef0=1)  # noqa: E731
        kaa, kbb = k(a, a), k(b, b)
        values.append((kaa.sum() - np.trace(kaa)) / (200 * 199) + (kbb.sum() - np.trace(kbb)) / (200 * 199)
                      - 2 * k(a, b).mean())
    assert median == pytest.approx(np.median(values), rel=1e-9)
    assert spread == pytest.approx(iqr(values, rng=(16.275, 83.725)) / 2, rel=1e-9)


def test_roc_auc_with_ties_and_the_two_sample_classifier():
    scores = torch.tensor([0.1, 0.4, 0.4, 0.8, 0.3, 0.4, 0.9, 0.2])
    labels = torch.tensor([0, 0, 1, 1, 0, 1, 1, 0])
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()))
    generator = torch.Generator().manual_seed(0)
    same = classifier_auc(torch.randn(400, 5, generator=generator), torch.randn(400, 5, generator=generator))
    apart = classifier_auc(torch.randn(400, 5, generator=generator), torch.randn(400, 5, generator=generator) + 2)
    assert abs(same - 0.5) < 0.1 and apart > 0.95


def test_calo_datasets_are_balanced_and_refuse_resizing():
    data = build_dataset(DataConfig(name="calo", max_images=40))
    assert data.images.shape == (40, 3, 16, 16) and data.num_classes == 10 and data.class_names[7] == "pi+ 20 GeV"
    assert torch.bincount(data.labels).tolist() == [4] * 10
    pid = build_dataset(DataConfig(name="calo-pid-data", max_images=10, split="test"))
    assert pid.class_names == ["e-", "pi+"] and torch.bincount(pid.labels).tolist() == [5, 5]
    with pytest.raises(DataError, match="cannot be resized"):
        build_dataset(DataConfig(name="calo", image_size=28, max_images=10))
    with pytest.raises(DataError, match="cannot be resized"):
        build_dataset(DataConfig(name="fake", image_size=16, max_images=10, target="calo-data"))


@pytest.mark.parametrize("preset", ["calo-gan", "calo-vae", "calo-ddpm"])
def test_the_calo_presets_are_conditional_fast_simulators_scored_by_every_physics_metric(preset, tmp_path):
    raw = load_config(preset).model_dump(mode="json")  # the preset, at a tiny size: 6 showers per class
    raw["model"].update(TINY_MODELS[raw["family"]])
    raw["data"].update(max_images=60)
    raw["train"].update(steps=2, batch_size=8, log_every=1, sample_every=1, eval_samples=60, eval_real=60,
                        eval_metrics=[*raw["train"]["eval_metrics"], "calo-auc"])  # (gz.evaluate would simulate 20k)
    run = make_trainer(build_config(raw), tmp_path / "run", progress=False).fit()
    assert run.config.is_file() and gz.load(run.path).conditional
    if preset == "calo-gan":  # a fast simulator beside the simulator at one class: `genzoo run simulate`
        check_simulate_with_a_run(run.path, tmp_path)
    record = json.loads((run.path / "metrics.jsonl").read_text().splitlines()[-1])  # the evaluation at the end
    during = {s["name"]: s for s in record["scores"]}
    assert {"w1-energy", "sep-depth", "w1-width_1", "fpd", "kpd", "response pi+ 100 GeV", "resolution e- 5 GeV"} <= set(during)
    assert all(np.isfinite(s["value"]) for s in during.values())
    assert during["fpd"]["protocol"]["n_fake"] == 60 and during["w1-energy"]["protocol"]["units"] == "GeV"
    assert 0 <= during["calo-auc"]["value"] <= 1 and during["response e- 5 GeV"]["protocol"]["n_fake_class"] == 6


def test_a_run_scored_by_physics_metrics_on_other_data_is_refused_before_training(tmp_path, capsys):
    from test_cli import genzoo

    code, _, err = genzoo(capsys, "train", "calo-gan", "data.name=fake", "data.image_size=16", "data.max_images=16",
                          "model.generator_width=4", "model.discriminator_width=4", "train.steps=2", "train.batch_size=8",
                          "--no-progress", "--out", str(tmp_path / "run"))
    assert code == 2 and "need calorimeter showers" in err and "train.eval_metrics" in err
    assert not (tmp_path / "run").exists()  # refused before the run folder was written, not after training


def test_physics_metrics_refuse_a_model_of_other_images(tmp_path):
    with pytest.raises(GenzooError, match="calorimeter showers"):
        gz.evaluate(make_trainer(tiny_config("vae"), tmp_path / "fake", progress=False).fit().path, ["fpd"], num_samples=10)


def check_simulate_with_a_run(run, tmp_path):  # noqa: ANN001
    folder = gz.run_procedure("simulate", tmp_path / "both", overrides={"particle": "pi+", "energy": 20, "count": 40,
                                                                       "run": str(run)}, progress=False)
    result = json.loads((folder.path / "result.json").read_text())
    showers = np.load(folder.path / "showers.npz")
    assert showers["generated"].shape == showers["simulated"].shape == (40, 3, 16, 16)
    model = gz.load(run)
    with torch.no_grad():  # the generator's showers of class "pi+ 20 GeV", with the procedure's seed
        expected = decode(model.generate(40, labels=torch.full((40,), model.info.class_names.index("pi+ 20 GeV")),
                                         generator=torch.Generator().manual_seed(0))).float()
    assert torch.allclose(torch.from_numpy(showers["generated"]), expected)
    assert set(result["w1"]) == {"energy", "depth", "width_1", "fraction_0"} and 0 <= result["classifier_auc"] <= 1
    assert result["speed_up"] == pytest.approx(result["generator"]["showers_per_s"] / result["simulator"]["showers_per_s"])
    with pytest.raises(GenzooError, match=r"trained on e- and pi\+ at 5, 10, 20, 50, 100 GeV only, not e- at 30 GeV"):
        gz.run_procedure("simulate", tmp_path / "no", overrides={"energy": 30, "run": str(run)}, progress=False)
    assert not (tmp_path / "no").exists()


def test_simulate_writes_the_simulators_showers_and_refuses_energies_outside_its_range(tmp_path, capsys):
    from test_cli import genzoo

    code, out, err = genzoo(capsys, "run", "simulate", "particle=e-", "energy=50", "count=30", "detector=data",
                            "--no-progress", "--out", str(tmp_path / "sim"))
    assert code == 0 and "simulator.mean_energy_gev" in out, err
    showers = np.load(tmp_path / "sim" / "showers.npz")["simulated"]
    assert np.array_equal(showers, simulate(["e-"] * 30, [50.0] * 30, seed=[0, 0], detector=DATA))  # seeded, as stated
    result = json.loads((tmp_path / "sim" / "result.json").read_text())
    assert result["simulator"]["mean_energy_gev"] == pytest.approx(showers.sum((1, 2, 3)).mean(), rel=1e-5)
    assert {p["file"] for p in json.loads((tmp_path / "sim" / "pictures" / "index.json").read_text())} == {
        "mean_shower.png", "observables.png"}
    code, _, err = genzoo(capsys, "run", "simulate", "energy=0.5", "--out", str(tmp_path / "low"))
    assert code == 2 and err.strip() == ("error: energy 0.5 GeV is outside the simulated range [1, 200] GeV; "
                                         "choose energies in that range.") and not (tmp_path / "low").exists()

"""The proxy A-distance (Ben-David et al. 2007) and the picture of source and target features before and
after domain adaptation: known answers, agreement with scikit-learn, the `a-distance` metric of a run,
the run's initial weights rebuilt from its seed, and the report's picture."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_config
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from test_cli import genzoo

import genzoo as gz
from genzoo.api import make_trainer
from genzoo.config import build_config
from genzoo.data import build_dataset
from genzoo.data.adaptation import SourceTargetData
from genzoo.data.base import ImageData
from genzoo.loading import initial_model
from genzoo.metrics.adaptation import a_distance_from_error, fit_logistic_regression, proxy_a_distance
from genzoo.models.dann import DANN
from genzoo.report.domains import feature_picture, pca_2d


def gaussians(n: int, shift: float, dims: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n points of N(0, I) and n of N(shift e_1, I), (n, dims) each."""
    generator = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, dims, generator=generator), torch.randn(n, dims, generator=generator)
    b[:, 0] += shift
    return a, b


def test_the_a_distance_of_an_error_is_two_times_one_minus_twice_the_error_clamped_to_0_2():
    assert a_distance_from_error(0.0) == 2.0  # linearly separable
    assert a_distance_from_error(0.5) == 0.0  # chance: indistinguishable
    assert a_distance_from_error(0.25) == 1.0
    assert a_distance_from_error(0.6) == 0.0 and a_distance_from_error(1.0) == 0.0  # worse than chance is chance


def test_identical_distributions_give_about_0_and_separable_ones_give_2():
    # 2,000 held-out points: the error's standard deviation is 0.011, d_A's 0.045; 0.15 is over 3 of them
    same, _ = proxy_a_distance(*gaussians(2000, 0.0))
    assert 0.0 <= same < 0.15
    far, error = proxy_a_distance(*gaussians(500, 20.0))
    assert far == 2.0 and error == 0.0
    # the two domains swapped, or given in another order: the same distance up to sampling
    a, b = gaussians(1000, 1.0)
    assert proxy_a_distance(a, b)[0] == pytest.approx(proxy_a_distance(b, a)[0], abs=0.1)
    # N(0, 1) against N(1, 1) along one axis: the Bayes error is Phi(-1/2) = 0.3085, so d_A is about 0.77
    assert proxy_a_distance(a, b)[0] == pytest.approx(2 * (1 - 2 * 0.3085), abs=0.15)


def test_the_logistic_regression_is_scikit_learns_and_the_distance_agrees_with_a_linear_svm():
    a, b = gaussians(400, 0.5, dims=6, seed=3)
    x = torch.cat([a, b])
    x = (x - x.mean(0)) / x.std(0)
    y = torch.cat([torch.zeros(400), torch.ones(400)])
    weights, bias = fit_logistic_regression(x, y, c=1.0)
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x.numpy(), y.numpy())
    np.testing.assert_allclose(weights.numpy(), reference.coef_[0], atol=1e-4)
    assert bias.item() == pytest.approx(reference.intercept_[0], abs=1e-4)
    # the distance with the paper's classifier, a linear SVM, on the same split: close
    a, b = gaussians(1000, 0.8, dims=6, seed=4)
    ours, _ = proxy_a_distance(a, b, seed=0)
    generator = torch.Generator().manual_seed(0)  # the split proxy_a_distance makes
    a, b = a[torch.randperm(1000, generator=generator)], b[torch.randperm(1000, generator=generator)]
    train, test = torch.cat([a[:500], b[:500]]).numpy(), torch.cat([a[500:], b[500:]]).numpy()
    labels = np.r_[np.zeros(500), np.ones(500)]
    svm_error = 1 - LinearSVC(C=1.0).fit(train, labels).score(test, labels)
    assert ours == pytest.approx(a_distance_from_error(svm_error), abs=0.06)


def test_the_a_distance_metric_scores_a_dann_runs_features_and_pixels(tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = genzoo(capsys, "train", "dann", "model.width=4", "model.hidden=8", "data.name=fake", "data.image_size=16",
                          "data.max_images=64", "data.target.name=fake", "data.target.max_images=32", "train.steps=2",
                          "train.batch_size=8", "--no-progress", "--out", str(run))
    assert code == 0, err
    assert (run / "pictures" / "features.png").is_file()  # the report's picture of source and target features
    (score,) = gz.evaluate(run, ["a-distance"], num_real=100)
    protocol = score.protocol
    assert protocol["n_source"] == protocol["n_target"] == 100 and 0.0 <= score.value <= 2.0
    config = build_config(json.loads((run / "config.json").read_text())).data  # as evaluate reads it: all of each side
    data = build_dataset(config.model_copy(update={"max_images": None, "target": config.target.model_copy(update={"max_images": None})}))
    source = data.source_data.batch(torch.arange(100))["image"]
    target = data.target_dataset().batch(torch.arange(100))["image"]
    model = gz.load(run)
    assert score.value == proxy_a_distance(model.encode(source), model.encode(target))[0]
    assert protocol["pixels_a_distance"] == proxy_a_distance(source, target)[0]
    code, out, err = genzoo(capsys, "eval", str(run), "--metrics", "a-distance,accuracy", "--num-real", "100")
    assert code == 0 and "a-distance" in out and "target-accuracy" in out, err


def test_the_a_distance_needs_features_and_a_target(tmp_path, capsys):
    for family, phrase in (("gan", "encode"), ("vae", "data.target")):
        run = tmp_path / family
        gz.train(tiny_config(family), run, progress=False)
        code, _, err = genzoo(capsys, "eval", str(run), "--metrics", "a-distance", "-n", "8")
        assert code == 2 and phrase in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_the_runs_seed_rebuilds_its_initial_weights(tmp_path):
    trainer = make_trainer(tiny_config("dann", steps=3, seed=5), tmp_path / "run", progress=False)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    torch.manual_seed(123)
    rebuilt = initial_model(tmp_path / "run")
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(3), after)  # the caller's random state is left alone
    trained = gz.load(tmp_path / "run")
    assert start.keys() == rebuilt.state_dict().keys()
    for key, value in rebuilt.state_dict().items():
        assert torch.equal(start[key], value), key
    assert any(not torch.equal(start[k], v) for k, v in trained.state_dict().items())  # training moved them


def test_the_pictures_pca_is_exact_and_deterministic():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=generator) * torch.tensor([5.0, 2.0, 0.5, 0.1, 0.1]) + 3.0
    points = pca_2d(x)
    reference = PCA(n_components=2).fit_transform(x.double().numpy())
    np.testing.assert_allclose(points.abs().numpy(), np.abs(reference), atol=1e-4)  # the same up to each axis's sign
    assert torch.equal(points, pca_2d(x)) and torch.equal(pca_2d(-x)[:, 0], pca_2d(-x)[:, 0])
    assert torch.allclose(pca_2d(x.flip(0)), points.flip(0), atol=1e-5)  # the signs do not depend on the order


def test_source_target_data_says_its_split_so_that_eval_can_honour_split_test():
    def side(split: str | None) -> ImageData:
        return ImageData(torch.zeros(4, 1, 16, 16, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64), 2, split=split)

    assert SourceTargetData(side("test"), side("test")).split == "test"
    assert SourceTargetData(side("test"), side("train")).split is None  # two splits: none to claim
    assert SourceTargetData(side("test"), side(None)).split is None  # a target without splits (digits)


def test_the_feature_picture_draws_pca_and_tsne_of_both_domains(tmp_path):
    config = tiny_config("dann", data={"max_images": 120, "target": {"name": "fake", "max_images": 120}})
    data = build_dataset(config.data)
    model = DANN(config.model, data.info).eval()
    caption = feature_picture({"initial": model}, data, tmp_path / "features.png", n=100)
    assert (tmp_path / "features.png").is_file() and "PCA, t-SNE" in caption  # scikit-learn is in the test extra
    caption = feature_picture({"initial": model}, data, tmp_path / "few.png", n=50)
    assert "PCA;" in caption and "t-SNE" not in caption  # too few points for perplexity 30

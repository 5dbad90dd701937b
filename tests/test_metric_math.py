"""The metric math: known answers, and agreement with independent implementations.

Reference packages (pytorch-fid, torch-fidelity, torchmetrics, prdc, scipy) are test-only and
skipped when absent. Each agreement test prints its measured relative difference (pytest -s).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from genzoo.errors import GenzooError
from genzoo.metrics import functional, manifold
from genzoo.metrics.functional import (
    RunningMoments,
    check_fid_sample_count,
    class_variety,
    fid_from_moments,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    mmd2_unbiased,
    mse_psnr,
)
from genzoo.metrics.manifold import density_coverage, precision_recall

pytestmark = [
    pytest.mark.filterwarnings("ignore:Metric .* will save all extracted features:UserWarning"),
    pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning"),
]

AGREE = 1e-6  # relative agreement required with the reference implementations


def rel(ours: float, reference: float) -> float:
    """Relative difference, printed so the measured agreement is visible with -s."""
    return abs(float(ours) - float(reference)) / max(abs(float(reference)), 1e-300)


def report(name: str, *diffs: float) -> float:
    worst = max(diffs)
    print(f"agreement {name}: max relative difference {worst:.3e}")
    return worst


def one_sentence(message: str) -> bool:
    return "\n" not in message and message.endswith(".") and ". " not in message[:-1]


@pytest.fixture(scope="module")
def features() -> tuple[torch.Tensor, torch.Tensor]:
    """600 x 64 float64 real and fake features from two different Gaussians."""
    g = torch.Generator().manual_seed(1234)
    real = torch.randn(600, 64, generator=g, dtype=torch.float64) * 1.5 + 0.5
    mixing = torch.eye(64, dtype=torch.float64) + torch.randn(64, 64, generator=g, dtype=torch.float64) / 10
    fake = torch.randn(600, 64, generator=g, dtype=torch.float64) @ mixing + 0.8
    return real, fake


@pytest.fixture(scope="module")
def class_logits() -> torch.Tensor:
    """1003 x 10 float64 logits (1003 is not a multiple of the 10 splits)."""
    g = torch.Generator().manual_seed(99)
    return torch.randn(1003, 10, generator=g, dtype=torch.float64) * 3


class Passthrough(nn.Module):
    """A torchmetrics 'feature extractor' that hands its input over unchanged."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


# ----------------------------------------------------------------------------------------------------
# Running moments
# ----------------------------------------------------------------------------------------------------


def test_running_moments_match_numpy_over_uneven_batches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1001, 16, generator=g, dtype=torch.float64) * 3 + 100  # a large mean tests cancellation
    moments = RunningMoments()
    for batch in torch.split(x, [1, 300, 7, 500, 193]):
        moments.update(batch.float() if batch.shape[0] == 7 else batch)  # a float32 batch is fine too
    x[1 + 300 : 1 + 300 + 7] = x[1 + 300 : 1 + 300 + 7].float().double()
    reference = x.numpy()
    assert moments.count == 1001
    np.testing.assert_allclose(moments.mean.numpy(), reference.mean(axis=0), rtol=1e-12, atol=0)
    np.testing.assert_allclose(moments.covariance.numpy(), np.cov(reference, rowvar=False), rtol=0, atol=1e-12 * 9)


def test_running_moments_merge_and_state_round_trip(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(500, 8, generator=g, dtype=torch.float64)
    whole = RunningMoments().update(x)
    first, second = RunningMoments().update(x[:123]), RunningMoments().update(x[123:])
    merged = RunningMoments().merge(first).merge(RunningMoments()).merge(second)
    assert merged.count == 500
    torch.testing.assert_close(merged.mean, whole.mean, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(merged.covariance, whole.covariance, rtol=1e-12, atol=1e-14)

    path = tmp_path / "reference.safetensors"
    safetensors_torch.save_file(whole.state_dict(), str(path))
    loaded = RunningMoments.from_state(safetensors_torch.load_file(str(path)))
    assert loaded.count == 500
    assert torch.equal(loaded.mean, whole.mean) and torch.equal(loaded.covariance, whole.covariance)
    loaded.update(x[:10])  # a loaded state keeps accumulating
    assert loaded.count == 510


def test_running_moments_refuse_nonsense():
    with pytest.raises(GenzooError):
        _ = RunningMoments().mean
    with pytest.raises(GenzooError):
        _ = RunningMoments().update(torch.zeros(1, 3)).covariance
    with pytest.raises(GenzooError):
        RunningMoments().update(torch.zeros(4, 3)).update(torch.zeros(4, 5))
    with pytest.raises(GenzooError):
        RunningMoments().update(torch.zeros(4, 3, 2))
    with pytest.raises(GenzooError):
        RunningMoments.from_state({"count": torch.tensor(3), "mean": torch.zeros(3)})
    with pytest.raises(GenzooError):
        RunningMoments.from_state({"count": torch.tensor(3), "mean": torch.zeros(3), "scatter": torch.zeros(2, 2)})


# ----------------------------------------------------------------------------------------------------
# Fréchet distance
# ----------------------------------------------------------------------------------------------------


def test_frechet_distance_of_diagonal_gaussians_by_hand():
    mu1, mu2 = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 0.0, 1.0])
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 0.25])
    # ||mu1 - mu2||^2 + sum (sqrt a - sqrt b)^2 = 9 + (1 + 1 + 6.25)
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(17.25, rel=1e-13)


def test_frechet_distance_with_a_dead_feature_by_hand():
    # sigma1 is singular (a feature that never varies), so the Cholesky path falls back to eigh.
    zero = torch.zeros(3, dtype=torch.float64)
    a, b = torch.tensor([0.0, 1.0, 4.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    assert frechet_distance(zero, torch.diag(a), zero, torch.diag(b)) == pytest.approx(2.0, rel=1e-13)
    assert frechet_distance(zero, torch.diag(b), zero, torch.diag(a)) == pytest.approx(2.0, rel=1e-13)


def test_frechet_distance_of_commuting_non_diagonal_gaussians_by_hand():
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    a = torch.tensor([0.5, 2.0, 3.0, 7.0], dtype=torch.float64)
    b = torch.tensor([2.0, 2.0, 0.1, 1.0], dtype=torch.float64)
    sigma1, sigma2 = q @ torch.diag(a) @ q.T, q @ torch.diag(b) @ q.T  # share eigenvectors, so they commute
    mu1, mu2 = torch.tensor([1.0, 0.0, -1.0, 2.0]), torch.tensor([0.0, 0.5, -1.0, 0.0])
    expected = float((mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum())
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-12)
    # A rank-deficient covariance against itself: the trace term is zero up to rounding (the singular values of
    # R^T R are not square roots of rounded eigenvalues, which would leave ~1e-8), and never negative.
    singular = q[:, :2] @ q[:, :2].T * 3
    assert 0 <= frechet_distance(mu1, singular, mu1, singular) < 1e-13


def test_fid_of_a_feature_set_against_itself_is_zero(features):
    real, _ = features
    moments = RunningMoments().update(real[:300]).update(real[300:])
    assert 0 <= fid_from_moments(moments, RunningMoments().update(real)) < 1e-12


def test_frechet_distance_agrees_with_pytorch_fid(features):
    real, fake = (f.numpy() for f in features)
    mu1, sigma1 = real.mean(axis=0), np.cov(real, rowvar=False)
    mu2, sigma2 = fake.mean(axis=0), np.cov(fake, rowvar=False)
    try:
        from pytorch_fid.fid_score import calculate_frechet_distance
        reference = float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    except ImportError:
        linalg = pytest.importorskip("scipy.linalg")
        covmean = linalg.sqrtm(sigma1 @ sigma2).real
        reference = float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * covmean))
    ours = frechet_distance(*(torch.from_numpy(v) for v in (mu1, sigma1, mu2, sigma2)))
    streamed = fid_from_moments(RunningMoments().update(features[0][:250]).update(features[0][250:]),
                                RunningMoments().update(features[1]))
    assert report("FID vs pytorch-fid (scipy sqrtm)", rel(ours, reference), rel(streamed, reference)) < AGREE


def test_frechet_distance_agrees_with_torch_fidelity(features):
    metric_fid = pytest.importorskip("torch_fidelity.metric_fid")
    real, fake = features
    reference = metric_fid.fid_statistics_to_metric(metric_fid.fid_features_to_statistics(real),
                                                    metric_fid.fid_features_to_statistics(fake), verbose=False)
    reference = reference["frechet_inception_distance"]
    ours = fid_from_moments(RunningMoments().update(real), RunningMoments().update(fake))
    assert report("FID vs torch-fidelity", rel(ours, reference)) < AGREE


def test_frechet_distance_agrees_with_torchmetrics(features):
    pytest.importorskip("torchmetrics")
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = features
    metric = FrechetInceptionDistance(feature=Passthrough(real.shape[1]))
    for batch in torch.split(real, 128):
        metric.update(batch, real=True)
    for batch in torch.split(fake, 128):
        metric.update(batch, real=False)
    reference = float(metric.compute())
    ours = fid_from_moments(RunningMoments().update(real), RunningMoments().update(fake))
    assert report("FID vs torchmetrics", rel(ours, reference)) < AGREE


def test_fid_refuses_too_few_samples_and_mismatched_dimensions():
    with pytest.raises(GenzooError) as error:
        check_fid_sample_count(64, 64)
    assert "D+1" in str(error.value) and "--num-samples" in str(error.value) and one_sentence(str(error.value))
    check_fid_sample_count(65, 64)
    few = RunningMoments().update(torch.randn(10, 16))
    with pytest.raises(GenzooError):
        fid_from_moments(few, RunningMoments().update(torch.randn(100, 16)))
    with pytest.raises(GenzooError) as error:
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(4), torch.eye(4))
    assert one_sentence(str(error.value))
    with pytest.raises(GenzooError):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(3), torch.full((3, 3), float("nan")))


# ----------------------------------------------------------------------------------------------------
# Kernel distance
# ----------------------------------------------------------------------------------------------------


def test_mmd2_unbiased_by_hand():
    # k(a, b) = (ab + 1)^3 in one dimension: K_xx off-diagonal 2 * 27 / 2, K_yy 2 * 1 / 2,
    # K_xy (1 + 8 + 1 + 27) * 2 / 4, so MMD^2 = 27 + 1 - 18.5.
    x, y = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.0], [1.0]])
    assert mmd2_unbiased(x, y) == pytest.approx(9.5, rel=1e-15)


def test_mmd2_unbiased_matches_the_formula_for_unequal_sizes(features):
    real, fake = features[0][:50], features[1][:70]
    k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(real, real), k(fake, fake), k(real, fake)
    expected = ((kxx.sum() - kxx.diag().sum()) / (50 * 49) + (kyy.sum() - kyy.diag().sum()) / (70 * 69)
                - 2 * kxy.mean())
    assert mmd2_unbiased(real, fake) == pytest.approx(float(expected), rel=1e-12)


def test_mmd_of_a_set_with_itself_and_of_one_distribution_is_near_zero(features):
    real, fake = features
    x = real[:300]
    # The unbiased estimator of x against itself is 2 (S_off / (n (n-1)) - S_all / n^2): tiny, not 0.
    kernel = (x @ x.T / x.shape[1] + 1) ** 3
    n, s_all = x.shape[0], kernel.sum()
    expected = float(2 * ((s_all - kernel.diag().sum()) / (n * (n - 1)) - s_all / n**2))
    assert mmd2_unbiased(x, x) == pytest.approx(expected, rel=1e-10)
    same_distribution = mmd2_unbiased(real[:300], real[300:])
    different = mmd2_unbiased(real, fake)
    assert abs(same_distribution) < 0.02 * different


def test_chunked_sums_match_whole_matrices(features, monkeypatch):
    real, fake = features[0][:200], features[1][:150]
    whole_mmd = mmd2_unbiased(real, fake)
    whole_pr, whole_dc = precision_recall(real, fake, k=3), density_coverage(real, fake, k=5)
    monkeypatch.setattr(functional, "_BLOCK_ELEMENTS", 10_000)  # blocks of 50-66 rows
    monkeypatch.setattr(manifold, "_BLOCK_ELEMENTS", 10_000)
    assert mmd2_unbiased(real, fake) == pytest.approx(whole_mmd, rel=1e-10)
    assert precision_recall(real, fake, k=3) == whole_pr
    assert density_coverage(real, fake, k=5) == whole_dc


def test_kid_agrees_with_torchmetrics_on_the_whole_set(features):
    pytest.importorskip("torchmetrics")
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = features
    n = real.shape[0]
    metric = KernelInceptionDistance(feature=Passthrough(real.shape[1]), subsets=1, subset_size=n)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    ref_mean, ref_std = (float(v) for v in metric.compute())
    mean, std = kernel_inception_distance(real, fake, num_subsets=1, subset_size=n)
    assert std == 0 and ref_std == 0
    assert report("KID (1 subset = whole set) vs torchmetrics", rel(mean, ref_mean)) < AGREE


def test_kid_draws_the_same_subsets_as_torchmetrics_given_the_seed(features):
    pytest.importorskip("torchmetrics")
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = features
    metric = KernelInceptionDistance(feature=Passthrough(real.shape[1]), subsets=5, subset_size=200)
    metric.update(real, real=True)
    metric.update(fake[:500], real=False)
    torch.manual_seed(7)
    ref_mean, ref_std = (float(v) for v in metric.compute())
    torch.manual_seed(7)
    mean, std = kernel_inception_distance(real, fake[:500], num_subsets=5, subset_size=200)
    assert report("KID (5 seeded subsets of 200) vs torchmetrics", rel(mean, ref_mean), rel(std, ref_std)) < AGREE


def test_kid_agrees_with_torch_fidelity_on_the_whole_set(features):
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    real, fake = features
    n = real.shape[0]
    reference = metric_kid.kid_features_to_metric(real, fake, kid_subsets=1, kid_subset_size=n, verbose=False)
    mean, std = kernel_inception_distance(real, fake, num_subsets=1, subset_size=n,
                                          generator=torch.Generator().manual_seed(0))
    assert reference["kernel_inception_distance_std"] == 0 and std == 0
    assert report("KID (1 subset = whole set) vs torch-fidelity",
                  rel(mean, reference["kernel_inception_distance_mean"])) < AGREE


def test_kid_clips_the_subset_size_and_refuses_nonsense(features):
    real, fake = features
    clipped = kernel_inception_distance(real[:100], fake[:80], num_subsets=3, subset_size=1000,
                                        generator=torch.Generator().manual_seed(0))
    whole = kernel_inception_distance(real[:100], fake[:80], num_subsets=3, subset_size=80,
                                      generator=torch.Generator().manual_seed(0))
    assert clipped == whole
    with pytest.raises(GenzooError) as error:
        kernel_inception_distance(real, fake[:, :10])
    assert one_sentence(str(error.value))
    with pytest.raises(GenzooError):
        kernel_inception_distance(real[:1], fake)


# ----------------------------------------------------------------------------------------------------
# Inception score
# ----------------------------------------------------------------------------------------------------


def test_inception_score_of_even_one_hot_predictions_is_the_class_count():
    classes = torch.arange(1000) % 10  # every split of 100 rows holds each class 10 times
    one_hot = torch.nn.functional.one_hot(classes, 10).double()
    mean, std = inception_score(probabilities=one_hot, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-14) and std == pytest.approx(0.0, abs=1e-12)
    mean, _ = inception_score(logits=one_hot * 60, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-12)


def test_inception_score_of_identical_predictions_is_one():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]]).repeat(200, 1)
    mean, std = inception_score(logits=logits, splits=4)
    assert mean == pytest.approx(1.0, abs=1e-14) and std == pytest.approx(0.0, abs=1e-14)
    mean, _ = inception_score(probabilities=logits.softmax(dim=1), splits=4)
    assert mean == pytest.approx(1.0, abs=1e-12)


def test_inception_score_agrees_with_torch_fidelity(class_logits):
    metric_isc = pytest.importorskip("torch_fidelity.metric_isc")
    reference = metric_isc.isc_features_to_metric(class_logits, splits=10, shuffle=False)
    mean, std = inception_score(logits=class_logits, splits=10)
    from_probabilities, _ = inception_score(probabilities=class_logits.softmax(dim=1), splits=10)
    assert report("IS vs torch-fidelity (N=1003, 10 splits)", rel(mean, reference["inception_score_mean"]),
                  rel(std, reference["inception_score_std"]),
                  rel(from_probabilities, reference["inception_score_mean"])) < AGREE


def test_inception_score_agrees_with_torchmetrics(class_logits):
    pytest.importorskip("torchmetrics")
    from torchmetrics.image.inception import InceptionScore

    logits = class_logits[:1000]  # torchmetrics' torch.chunk splits match ours when N is a multiple of splits
    metric = InceptionScore(feature=Passthrough(10), splits=10)
    metric.update(logits)
    torch.manual_seed(11)
    ref_mean, ref_std = (float(v) for v in metric.compute())  # shuffles with torch.randperm
    torch.manual_seed(11)
    mean, std = inception_score(logits=logits, splits=10, shuffle=True)  # the same permutation
    ddof1_std = std * math.sqrt(10 / 9)  # torchmetrics reports the ddof = 1 standard deviation
    assert report("IS vs torchmetrics (N=1000, 10 splits)", rel(mean, ref_mean), rel(ddof1_std, ref_std)) < AGREE


def test_inception_score_refuses_nonsense(class_logits):
    with pytest.raises(GenzooError) as error:
        inception_score(logits=class_logits, probabilities=class_logits.softmax(1))
    assert one_sentence(str(error.value))
    with pytest.raises(GenzooError):
        inception_score(probabilities=class_logits)  # logits passed as probabilities
    with pytest.raises(GenzooError):
        inception_score(logits=class_logits[:5], splits=10)


# ----------------------------------------------------------------------------------------------------
# Precision, recall, density, coverage
# ----------------------------------------------------------------------------------------------------


def test_precision_recall_density_coverage_of_identical_sets(features):
    real, _ = features
    assert precision_recall(real, real, k=3) == {"precision": 1.0, "recall": 1.0}
    # Each real's k-ball holds itself and its k - 1 nearest others (the k-th is on the open boundary).
    result = density_coverage(real, real.clone(), k=5)
    assert result["coverage"] == 1.0 and result["density"] == pytest.approx(1.0, rel=1e-14)


def test_precision_recall_density_coverage_of_disjoint_sets(features):
    real, _ = features
    assert precision_recall(real, real + 1000, k=3) == {"precision": 0.0, "recall": 0.0}
    assert density_coverage(real, real + 1000, k=5) == {"density": 0.0, "coverage": 0.0}


@pytest.mark.parametrize("k", [3, 5])
def test_precision_recall_density_coverage_agree_with_prdc(features, k):
    prdc = pytest.importorskip("prdc")
    pytest.importorskip("sklearn")
    real, _ = features
    # A shifted copy of the real distribution: overlapping but distinct, and of a different size.
    fake = torch.randn(500, 64, generator=torch.Generator().manual_seed(8), dtype=torch.float64) * 1.5 + 0.8
    reference = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=k)
    ours = {**precision_recall(real, fake, k=k), **density_coverage(real, fake, k=k)}
    assert 0 < ours["precision"] < 1 and 0 < ours["recall"] < 1 and 0 < ours["coverage"] < 1
    diffs = [rel(ours[name], reference[name]) for name in ("precision", "recall", "density", "coverage")]
    assert report(f"P/R/D/C vs prdc (k={k})", *diffs) < AGREE


def test_manifold_metrics_refuse_nonsense(features):
    real, fake = features
    with pytest.raises(GenzooError) as error:
        precision_recall(real[:3], fake, k=3)
    assert one_sentence(str(error.value))
    with pytest.raises(GenzooError):
        density_coverage(real, fake[:5], k=5)
    with pytest.raises(GenzooError):
        precision_recall(real, fake[:, :8])


# ----------------------------------------------------------------------------------------------------
# Class variety, reconstruction
# ----------------------------------------------------------------------------------------------------


def test_class_variety_of_collapsed_and_balanced_generators():
    real_labels = torch.arange(1000) % 10
    collapsed = torch.nn.functional.one_hot(torch.zeros(500, dtype=torch.long), 10).double()
    result = class_variety(collapsed, real_labels, 10)
    assert result["classes_covered"] == 1 and result["classes_above_share"] == 1
    assert result["histogram"] == [500] + [0] * 9
    assert result["kl"] == pytest.approx(math.log(10), rel=1e-6)

    balanced = torch.nn.functional.one_hot(torch.arange(500) % 10, 10).double() * 0.9 + 0.01
    result = class_variety(balanced, real_labels, 10)
    assert result["classes_covered"] == 10 and result["classes_above_share"] == 10
    assert abs(result["kl"]) < 1e-12
    # Real probabilities give the same real histogram as the labels they peak at.
    real_probs = torch.nn.functional.one_hot(real_labels, 10).double() * 0.5 + 0.05
    assert class_variety(balanced, real_probs, 10) == result


def test_class_variety_threshold_ignores_stray_samples():
    fake_classes = torch.cat([torch.zeros(991, dtype=torch.long), torch.arange(1, 10)])  # one stray sample each
    fake = torch.nn.functional.one_hot(fake_classes, 10).double()
    result = class_variety(fake, torch.arange(100) % 10, 10)
    assert result["classes_covered"] == 10 and result["classes_above_share"] == 1  # 0.1% < 10% of 10%


def test_class_variety_refuses_nonsense():
    fake = torch.softmax(torch.randn(20, 10), dim=1)
    with pytest.raises(GenzooError) as error:
        class_variety(fake, torch.tensor([0, 3, 10]), 10)
    assert one_sentence(str(error.value))
    with pytest.raises(GenzooError):
        class_variety(fake, torch.arange(10), 5)


def test_mse_psnr_known_answers():
    images = torch.rand(4, 3, 8, 8) * 2 - 1
    result = mse_psnr(images, images.clone())
    assert result["mse"] == 0 and result["psnr"] == math.inf
    # An offset of 0.2 in [-1, 1] is 0.1 in [0, 1]: MSE 0.01, PSNR 20 dB.
    result = mse_psnr(torch.zeros(2, 1, 4, 4, dtype=torch.float64), torch.full((2, 1, 4, 4), 0.2, dtype=torch.float64))
    assert result["mse"] == pytest.approx(0.01, rel=1e-12) and result["psnr"] == pytest.approx(20.0, rel=1e-12)
    with pytest.raises(GenzooError) as error:
        mse_psnr(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5))
    assert one_sentence(str(error.value))


def test_psnr_agrees_with_torchmetrics():
    pytest.importorskip("torchmetrics")
    from torchmetrics.functional.image import peak_signal_noise_ratio

    g = torch.Generator().manual_seed(5)
    x = torch.rand(4, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1
    x_hat = (x + torch.randn(x.shape, generator=g, dtype=torch.float64) * 0.1).clamp(-1, 1)
    reference = float(peak_signal_noise_ratio((x_hat + 1) / 2, (x + 1) / 2, data_range=1.0))
    assert report("PSNR vs torchmetrics", rel(mse_psnr(x, x_hat)["psnr"], reference)) < AGREE

"""Agreement where the well-conditioned Gaussians of test_metric_math.py do not reach: genzoo's own
`fmnist` features of real images (27 of 128 features dead on this sample, so every covariance is
singular), duplicated rows, n_fake != n_real, near-duplicates (memorised samples), identical sets,
and the cases where the reference libraries disagree with each other by design.

FID must agree with every reference to 1e-6 relative or 1e-9 absolute, whichever is looser; the
exact reference is a from-scratch computation in mpmath at 40 digits (on real features restricted
to a few columns, to stay fast; benchmarks/eval_agreement.py runs it on all 128). Each test prints
its measured difference (pytest -s).
"""

from __future__ import annotations

import contextlib
import io

import mpmath
import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from genzoo.config import DataConfig
from genzoo.data import build_dataset
from genzoo.metrics.features import load_features
from genzoo.metrics.functional import (RunningMoments, fid_from_moments, inception_score, kernel_inception_distance,
                                       mmd2_unbiased)
from genzoo.metrics.manifold import density_coverage, precision_recall

pytestmark = [
    pytest.mark.filterwarnings("ignore:Metric .* will save all extracted features:UserWarning"),
    pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning"),
]


def within(ours: float, reference: float) -> bool:
    """1e-6 relative or 1e-9 absolute, whichever is looser; prints the measured difference."""
    difference = abs(float(ours) - float(reference))
    print(f"ours {float(ours):.17g} reference {float(reference):.17g}: abs {difference:.2e}, "
          f"rel {difference / max(abs(float(reference)), 1e-300):.2e}")
    return difference <= max(1e-6 * abs(float(reference)), 1e-9)


@pytest.fixture(scope="module")
def features() -> torch.Tensor:
    """fmnist features (float64) of the first 2,000 images of the embedded Fashion-MNIST test split."""
    network = load_features("fmnist")
    data = build_dataset(DataConfig(name="fashion-mnist-sample"))
    batches = [network(data.batch(torch.arange(start, start + 500))["image"])["features"] for start in range(0, 2000, 500)]
    return torch.cat(batches).double()  # (2000, 128)


CASES = {  # name -> (real, fake) rows of the features above
    "disjoint, 1000 vs 1000": lambda f: (f[:1000], f[1000:]),
    "n_fake != n_real, 600 vs 1400": lambda f: (f[:600], f[600:]),
    "near-identical: 1300 shared, 1500 vs 1400": lambda f: (f[:1500], f[200:1600]),
    "duplicated rows, 700 x 2 vs 1400": lambda f: (f[:700].repeat(2, 1), f[:1400]),
    "a set against itself": lambda f: (f[:1000], f[:1000]),
}


def _ours(real: torch.Tensor, fake: torch.Tensor) -> float:
    moments = RunningMoments()
    for batch in real.split(256):  # streamed in batches, as evaluation does
        moments.update(batch)
    return fid_from_moments(moments, RunningMoments().update(fake))


def test_fmnist_features_are_singular(features):
    dead = (features == 0).all(dim=0)
    assert int(dead.sum()) == 27  # of 128: the covariance of any set of these images is singular
    with pytest.raises(torch.linalg.LinAlgError):
        torch.linalg.cholesky(torch.from_numpy(np.cov(features.numpy(), rowvar=False)))


@pytest.mark.parametrize("case", CASES)
def test_fid_on_fmnist_features_agrees_with_pytorch_fid_and_torch_fidelity(features, case):
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    real, fake = CASES[case](features)
    ours = _ours(real, fake)
    mu1, sigma1 = real.mean(0).numpy(), np.cov(real.numpy(), rowvar=False)
    mu2, sigma2 = fake.mean(0).numpy(), np.cov(fake.numpy(), rowvar=False)
    assert within(ours, calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
    fidelity = fid_statistics_to_metric(fid_features_to_statistics(real), fid_features_to_statistics(fake), verbose=False)
    assert within(ours, fidelity["frechet_inception_distance"])


@pytest.mark.parametrize("case", ["n_fake != n_real, 600 vs 1400", "a set against itself"])
def test_fid_on_fmnist_features_agrees_with_torchmetrics(features, case):
    from torchmetrics.image.fid import FrechetInceptionDistance

    class Passthrough(torch.nn.Module):
        num_features = 128

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    real, fake = CASES[case](features)
    metric = FrechetInceptionDistance(feature=Passthrough())
    metric.update(real, real=True)
    metric.update(fake, real=False)
    assert within(_ours(real, fake), float(metric.compute()))


def test_fid_of_a_set_against_itself_is_zero_never_negative(features):
    for rows in (slice(0, 1000), slice(500, 2000)):
        value = _ours(features[rows], features[rows])
        assert 0.0 <= value < 1e-12, value


# ----------------------------------------------------------------------------------------------------
# An exact reference: mpmath at 40 digits, from the float64 features themselves
# ----------------------------------------------------------------------------------------------------


def _mp_fid(real: torch.Tensor, fake: torch.Tensor) -> mpmath.mpf:
    """FID of two (n, d) float64 arrays in 40-digit arithmetic: exact moments, Sigma1^(1/2) from `eigsy`
    (exact zero eigenvalues come out ~1e-40), the trace term from the eigenvalues of Sigma1^(1/2) Sigma2
    Sigma1^(1/2)."""
    with mpmath.workdps(40):
        def moments(x: torch.Tensor) -> tuple[list, mpmath.matrix]:
            n, d = x.shape
            columns = [[mpmath.mpf(float(v)) for v in x[:, j]] for j in range(d)]
            mean = [mpmath.fsum(c) / n for c in columns]
            centred = [[v - m for v in c] for c, m in zip(columns, mean)]
            sigma = mpmath.matrix(d, d)
            for a in range(d):
                for b in range(a, d):
                    sigma[a, b] = sigma[b, a] = mpmath.fsum(p * q for p, q in zip(centred[a], centred[b])) / (n - 1)
            return mean, sigma

        mu1, sigma1 = moments(real)
        mu2, sigma2 = moments(fake)
        evals, evecs = mpmath.eigsy(sigma1)
        root = evecs * mpmath.diag([mpmath.sqrt(max(e, 0)) for e in evals]) * evecs.T
        inner = mpmath.eigsy(root * sigma2 * root, eigvals_only=True)
        trace = sum(sigma1[i, i] + sigma2[i, i] for i in range(sigma1.rows))
        return mpmath.fsum((a - b) ** 2 for a, b in zip(mu1, mu2)) + trace - 2 * mpmath.fsum(
            mpmath.sqrt(max(e, 0)) for e in inner)


def _edge_columns(features: torch.Tensor) -> torch.Tensor:
    """12 columns of real features: 3 dead, 7 live, and a copy of the first live one (linearly dependent)."""
    dead = (features == 0).all(dim=0).nonzero().flatten()[:3]
    live = (features != 0).any(dim=0).nonzero().flatten()[:8]
    columns = features[:, torch.cat([dead, live])]  # (N, 11)
    return torch.cat([columns, columns[:, 3:4]], dim=1)  # (N, 12): column 11 = column 3


@pytest.mark.parametrize("case", ["singular, n_fake != n_real", "dead in one set only", "duplicated rows",
                                  "a set against itself"])
def test_fid_of_singular_covariances_agrees_with_an_exact_reference(features, case):
    x = _edge_columns(features)  # (2000, 12)
    if case == "singular, n_fake != n_real":
        real, fake = x[:150], x[1000:1230]
    elif case == "dead in one set only":
        real, fake = x[:150].clone(), x[1000:1200]
        real[:, 5] = 0  # a feature that never fires on the real images but does on the fakes
    elif case == "duplicated rows":
        real, fake = x[:80].repeat(2, 1), x[:160]
    else:
        real, fake = x[:150], x[:150]
    reference = _mp_fid(real, fake)
    ours = fid_from_moments(RunningMoments().update(real[:70]).update(real[70:]), RunningMoments().update(fake))
    assert within(ours, float(reference))
    assert ours >= 0


# ----------------------------------------------------------------------------------------------------
# Density and coverage of duplicated and memorised samples
# ----------------------------------------------------------------------------------------------------


def _prdc(real: torch.Tensor, fake: torch.Tensor, k: int, exact: bool, monkeypatch) -> dict[str, float]:
    """prdc's counting; with `exact`, on distances from differences (scipy's cdist) rather than scikit-learn's
    matrix-product distances."""
    import prdc

    with monkeypatch.context() as patch:
        if exact:
            patch.setattr(prdc.prdc, "compute_pairwise_distance", lambda a, b=None: cdist(a, a if b is None else b))
        with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sample counts
            return {name: float(v) for name, v in prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=k).items()}


def _ours_prdc(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    return {**precision_recall(real, fake, k=k), **density_coverage(real, fake, k=k)}


def test_density_of_duplicated_rows_agrees_with_prdc(features, monkeypatch):
    # Every real image 6 times: every k = 5 radius is 0, so nothing is inside a real ball; fakes copy reals.
    real, fake = features[:150].repeat(6, 1), torch.cat([features[:100], features[1000:1200]])
    ours = _ours_prdc(real, fake, k=5)
    assert ours == _prdc(real, fake, 5, exact=False, monkeypatch=monkeypatch)
    assert ours["density"] == 0 and ours["coverage"] == 0 and ours["precision"] == 0
    collapsed = features[1000:1001].repeat(300, 1)  # a generator that makes one image: every fake radius is 0
    real = features[:300]
    ours = _ours_prdc(real, collapsed, k=5)
    assert ours == _prdc(real, collapsed, 5, exact=False, monkeypatch=monkeypatch) and ours["recall"] == 0


def test_density_of_memorised_samples_uses_exact_distances(features, monkeypatch):
    # Each of 100 real images has 5 near-copies at ~1e-9 (its k = 5 radius), and the fakes hold exact copies of
    # those 100 images: exactly inside their balls. The matrix-product distance of two identical 128-d vectors
    # is up to ~4e-7, far above the radius, so it decides these comparisons by its rounding.
    generator = torch.Generator().manual_seed(0)
    base, k = features[:100], 5
    jitter = [base + 1e-9 * j * torch.randn(base.shape, generator=generator, dtype=torch.float64).sign() for j in range(1, 6)]
    real = torch.cat([base, *jitter, features[1000:1400]])
    fake = torch.cat([base, base + 3e-9 * torch.randn(base.shape, generator=generator, dtype=torch.float64).sign(),
                      features[1500:1800]])
    ours, reference = _ours_prdc(real, fake, k), _prdc(real, fake, k, exact=True, monkeypatch=monkeypatch)
    print("ours", ours, "prdc on exact distances", reference)
    assert ours == pytest.approx(reference, rel=1e-12, abs=0)
    assert reference["density"] > 0.85  # the exact copies count: 100 fakes x 6 balls each
    # 30 distinct points within 1e-12 of one another: more near-ties than the k + 1 + 8 nearest looked at first
    cluster = features[:1] + 1e-12 * torch.randn(30, 128, generator=generator, dtype=torch.float64)
    real, fake = torch.cat([cluster, features[1000:1300]]), torch.cat([cluster[:10], features[1500:1700]])
    assert _ours_prdc(real, fake, 3) == pytest.approx(_prdc(real, fake, 3, exact=True, monkeypatch=monkeypatch), abs=0)


# ----------------------------------------------------------------------------------------------------
# KID and IS: agreement only where the references compute the same thing
# ----------------------------------------------------------------------------------------------------


def test_kid_agrees_with_torch_fidelity_on_its_own_subsets(features):
    from torch_fidelity.metric_kid import kid_features_to_metric

    real, fake = features[:600], features[600:1100]  # float64: torch-fidelity computes in the features' dtype
    reference = kid_features_to_metric(real, fake, kid_subsets=10, kid_subset_size=200, rng_seed=3, verbose=False)
    rng = np.random.RandomState(3)  # torch-fidelity's draws: real rows, then fake rows, per subset
    values = []
    for _ in range(10):
        rows_real, rows_fake = rng.choice(600, 200, replace=False), rng.choice(500, 200, replace=False)
        values.append(mmd2_unbiased(real[rows_real], fake[rows_fake]))
    assert within(np.mean(values), reference["kernel_inception_distance_mean"])
    assert within(np.std(values), reference["kernel_inception_distance_std"])
    # genzoo's own draws (torch's randperm, as torchmetrics) are other subsets: another estimate, not the same number
    ours, _ = kernel_inception_distance(real, fake, num_subsets=10, subset_size=200,
                                        generator=torch.Generator().manual_seed(3))
    assert abs(ours - reference["kernel_inception_distance_mean"]) > 1e-6 * abs(ours)


def test_inception_score_differs_from_torchmetrics_when_n_is_not_a_multiple_of_the_splits():
    from torchmetrics.image.inception import InceptionScore

    class Passthrough(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    logits = torch.randn(1003, 10, generator=torch.Generator().manual_seed(99), dtype=torch.float64) * 3
    metric = InceptionScore(feature=Passthrough(), splits=10)
    metric.update(logits)
    torch.manual_seed(11)
    theirs, _ = (float(v) for v in metric.compute())
    torch.manual_seed(11)
    ours, _ = inception_score(logits=logits, splits=10, shuffle=True)  # the same permutation, other split edges
    assert abs(ours - theirs) > 1e-6 * theirs  # torch.chunk makes splits of 101 rows and a last one of 94

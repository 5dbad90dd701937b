"""The math of genzoo's sample-quality metrics over feature arrays, in float64.

Tensors come in (any float dtype, any device); everything is computed in float64 on that device and
scalars come back as Python floats. Nothing here knows about images, models or feature networks.

Papers:

- Fréchet (Inception) distance: M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler, S. Hochreiter,
  "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017.
- Kernel (Inception) distance: M. Bińkowski, D. J. Sutherland, M. Arbel, A. Gretton, "Demystifying
  MMD GANs", ICLR 2018; the unbiased MMD^2 estimator is Lemma 6 of A. Gretton, K. M. Borgwardt,
  M. J. Rasch, B. Schölkopf, A. Smola, "A Kernel Two-Sample Test", JMLR 2012.
- Inception score: T. Salimans, I. Goodfellow, W. Zaremba, V. Cheung, A. Radford, X. Chen, "Improved
  Techniques for Training GANs", NeurIPS 2016.
- Streaming moments: T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating Formulae and a Pairwise
  Algorithm for Computing Sample Variances", 1979 (pairwise merge of mean and scatter matrix).

Conventions, where the common implementations differ (checked against pytorch-fid 0.3.0,
torch-fidelity 0.4.0, torchmetrics 1.9; precision, recall, density and coverage are in
``genzoo.metrics.manifold``):

- Covariance is unbiased (divides by n - 1), as ``np.cov`` in pytorch-fid and torch-fidelity and as
  torchmetrics' FID.
- KID and IS report the standard deviation over subsets/splits with ddof = 0 (``np.std``), as
  torch-fidelity and the original code of both papers do. torchmetrics' KID also uses ddof = 0, but its
  InceptionScore uses ddof = 1.
- IS splits are the original ``[i * N // splits, (i + 1) * N // splits)`` slices (as torch-fidelity);
  torchmetrics uses ``torch.chunk``, whose chunks have ``ceil(N / splits)`` rows, so its last split is
  smaller and there can be fewer than ``splits`` of them when N is not a multiple of ``splits``.
- KID clips ``subset_size`` to the smaller sample count (as clean-fid does); torchmetrics and
  torch-fidelity refuse instead. Subsets are drawn like torchmetrics: ``randperm(n_real)[:m]`` then
  ``randperm(n_fake)[:m]`` per subset, so with the same torch seed both draw the same subsets;
  torch-fidelity draws them with ``numpy.random.RandomState``, so it agrees only on the same subsets.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from genzoo.errors import GenzooError

__all__ = [
    "RunningMoments",
    "check_fid_sample_count",
    "class_variety",
    "fid_from_moments",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "mmd2_unbiased",
    "mse_psnr",
]

# Pairwise blocks are computed this many float64 entries at a time (32 MiB), so 10k x 10k sets never
# hold a full distance or kernel matrix.
_BLOCK_ELEMENTS = 1 << 22


def _as_float64(x: Any, name: str) -> Tensor:
    """`x` as a float64 tensor on its own device; non-finite values are a user-facing error."""
    t = torch.as_tensor(x)
    if t.is_complex():
        raise GenzooError(f"{name} is complex; pass real-valued tensors.")
    t = t.detach().to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise GenzooError(f"{name} contains NaN or infinite values; the model or feature network has probably "
                          "diverged.")
    return t


def _as_features(x: Any, name: str) -> Tensor:
    t = _as_float64(x, name)
    if t.dim() != 2:
        raise GenzooError(f"{name} must be a (samples, features) matrix but has shape {tuple(t.shape)}.")
    return t


def _same_dim(real: Tensor, fake: Tensor) -> None:
    if real.shape[1] != fake.shape[1]:
        raise GenzooError(f"real features have {real.shape[1]} dimensions but fake features have {fake.shape[1]}; "
                          "extract both with the same feature network.")


def _block_size(cols: int) -> int:
    return max(1, _BLOCK_ELEMENTS // max(1, cols))


# ----------------------------------------------------------------------------------------------------
# Streaming moments
# ----------------------------------------------------------------------------------------------------


class RunningMoments:
    """Streaming float64 mean and covariance of feature batches (B, D).

    The state is the count n, the mean mu (D,) and the scatter matrix M = sum_i (x_i - mu)(x_i - mu)^T
    (D, D). A batch is reduced to its own (n_b, mu_b, M_b) about its own mean and merged with the
    pairwise formulae of Chan, Golub and LeVeque (1979):

        n = n_a + n_b,  delta = mu_b - mu_a,  mu = mu_a + delta * n_b / n,
        M = M_a + M_b + delta delta^T * n_a n_b / n,

    which avoids the cancellation of sum x x^T - n mu mu^T when the mean is large against the spread.
    A feature that is constant over every batch (a dead ReLU) gets a scatter row and column of exact
    zeros, which ``frechet_distance`` recognises.
    ``covariance`` is M / (n - 1), the unbiased estimate of ``np.cov(x, rowvar=False)``.
    ``merge`` combines two instances the same way, e.g. after gathering ``state_dict()`` from every
    process; ``state_dict()`` holds plain CPU tensors so reference statistics can go to safetensors.
    """

    def __init__(self, dim: int | None = None, device: str | torch.device | None = None) -> None:
        self._count = 0
        self._mean: Tensor | None = None  # (D,) float64
        self._scatter: Tensor | None = None  # (D, D) float64
        if dim is not None:
            self._mean = torch.zeros(dim, dtype=torch.float64, device=device)
            self._scatter = torch.zeros(dim, dim, dtype=torch.float64, device=device)

    @property
    def count(self) -> int:
        return self._count

    @property
    def dim(self) -> int | None:
        return None if self._mean is None else int(self._mean.shape[0])

    @property
    def mean(self) -> Tensor:
        """(D,) float64 sample mean."""
        if self._count == 0 or self._mean is None:
            raise GenzooError("no features were accumulated, so there is no mean; feed at least one batch first.")
        return self._mean.clone()

    @property
    def scatter(self) -> Tensor:
        """(D, D) float64 scatter matrix M = sum_i (x_i - mu)(x_i - mu)^T."""
        if self._count == 0 or self._scatter is None:
            raise GenzooError("no features were accumulated, so there is no scatter; feed at least one batch first.")
        return self._scatter.clone()

    @property
    def covariance(self) -> Tensor:
        """(D, D) float64 unbiased sample covariance, M / (n - 1)."""
        if self._count < 2 or self._scatter is None:
            raise GenzooError(f"a covariance needs at least 2 samples but {self._count} were accumulated; "
                              "feed more samples.")
        return self._scatter / (self._count - 1)

    def _merge_parts(self, count: int, mean: Tensor, scatter: Tensor) -> None:
        if count == 0:
            return
        if self._mean is None or self._scatter is None:
            self._mean = torch.zeros_like(mean)
            self._scatter = torch.zeros_like(scatter)
        if mean.shape != self._mean.shape:
            raise GenzooError(f"features of dimension {mean.shape[0]} cannot be merged into moments of dimension "
                              f"{self._mean.shape[0]}; use one feature network throughout.")
        mean, scatter = mean.to(self._mean.device), scatter.to(self._mean.device)
        n_a, n_b = self._count, count
        n = n_a + n_b
        delta = mean - self._mean  # (D,)
        self._mean = self._mean + delta * (n_b / n)
        self._scatter = self._scatter + scatter + torch.outer(delta, delta) * (n_a * n_b / n)
        self._count = n

    def update(self, features: Tensor) -> RunningMoments:
        """Add a batch of features (B, D); returns self."""
        x = _as_features(features, "features")  # (B, D)
        if x.shape[0] == 0:
            return self
        if self._mean is not None and self._count == 0:
            x = x.to(self._mean.device)
        low, high = x.aminmax(dim=0)  # (D,), (D,)
        # a constant column gets its value as the mean (x.mean can be off by an ulp), so its scatter is exactly 0
        batch_mean = torch.where(low == high, low, x.mean(dim=0))  # (D,)
        centred = x - batch_mean  # (B, D)
        self._merge_parts(x.shape[0], batch_mean, centred.T @ centred)  # scatter (D, D)
        return self

    def merge(self, other: RunningMoments) -> RunningMoments:
        """Fold `other` into this instance (pairwise merge); returns self."""
        if other._count > 0:
            assert other._mean is not None and other._scatter is not None
            self._merge_parts(other._count, other._mean, other._scatter)
        return self

    def state_dict(self) -> dict[str, Tensor]:
        """Plain CPU tensors: ``count`` () int64, ``mean`` (D,) and ``scatter`` (D, D) float64."""
        if self._mean is None or self._scatter is None:
            raise GenzooError("moments of unknown dimension cannot be saved; feed at least one batch first.")
        return {"count": torch.tensor(self._count, dtype=torch.int64),
                "mean": self._mean.detach().cpu().contiguous(),
                "scatter": self._scatter.detach().cpu().contiguous()}

    @classmethod
    def from_state(cls, state: dict[str, Tensor], device: str | torch.device | None = None) -> RunningMoments:
        """Rebuild from ``state_dict()`` output (e.g. read back from safetensors)."""
        missing = {"count", "mean", "scatter"} - set(state)
        if missing:
            raise GenzooError(f"saved feature statistics lack {', '.join(sorted(missing))}; delete the cached file "
                              "so it is recomputed.")
        count_tensor = torch.as_tensor(state["count"])
        if count_tensor.numel() != 1:
            raise GenzooError("saved feature statistics are malformed; delete the cached file so it is recomputed.")
        count = int(count_tensor.reshape(-1)[0].item())
        mean = torch.as_tensor(state["mean"]).to(device=device, dtype=torch.float64)
        scatter = torch.as_tensor(state["scatter"]).to(device=device, dtype=torch.float64)
        dim = mean.shape[0] if mean.dim() == 1 else -1
        if count < 0 or mean.dim() != 1 or scatter.shape != (dim, dim) or not bool(torch.isfinite(scatter).all()) \
                or not bool(torch.isfinite(mean).all()):
            raise GenzooError("saved feature statistics are malformed; delete the cached file so it is recomputed.")
        moments = cls()
        moments._count, moments._mean, moments._scatter = count, mean, scatter
        return moments

    def __repr__(self) -> str:
        return f"RunningMoments(count={self._count}, dim={self.dim})"


# ----------------------------------------------------------------------------------------------------
# Fréchet distance
# ----------------------------------------------------------------------------------------------------


def check_fid_sample_count(n: int, dim: int) -> None:
    """Refuse FID when a side has n < D + 1 samples.

    The sample covariance of n points has rank at most n - 1, so with n <= D it is singular and the
    Fréchet distance is dominated by estimation error rather than by the distributions.
    """
    if n < dim + 1:
        raise GenzooError(f"FID needs at least D+1 = {dim + 1} samples per side for {dim}-dimensional features but got "
                          f"{n}; raise --num-samples or use a smaller feature network.")


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017):

        d^2 = ||mu1 - mu2||_2^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2}).

    Method for Tr (sigma1 sigma2)^{1/2}, with sigma1 = R1 R1^T and sigma2 = R2 R2^T: sigma1 sigma2 has
    the eigenvalues of (R1^T R2)(R1^T R2)^T, so Tr (sigma1 sigma2)^{1/2} = sum_i s_i(R1^T R2), the sum
    of the singular values (the nuclear norm) of R1^T R2. The singular values come from ``svdvals``
    with absolute error ~eps ||R1|| ||R2||; taking the square roots of eigenvalues of a product (scipy's
    ``sqrtm`` in pytorch-fid, ``eigvals`` in torchmetrics, or R1^T sigma2 R1) instead turns the
    rounding of its near-zero eigenvalues into errors of ~sqrt(eps) ||sigma||.
    R is the Cholesky factor when the covariance is positive definite, else its PSD square root from
    ``eigh`` with eigenvalues clamped at 0.

    Directions in which either covariance is exactly zero (a coordinate whose row and column are all
    zeros, e.g. a dead ReLU feature, constant in that set) add nothing to the square-root term: with
    sigma1 = [[A, 0], [0, 0]], sigma1 sigma2 = [[A B, A c], [0, 0]] has the eigenvalues of A B and
    zeros. They are dropped before factoring, so the rest is usually positive definite; the mean and
    trace terms keep every coordinate. Identical statistics give 0 up to rounding; the result is
    clamped at 0, since the distance cannot be negative.

    mu: (D,), sigma: (D, D).
    """
    mu1 = _as_float64(mu1, "mu1")
    mu2 = _as_float64(mu2, "mu2").to(mu1.device)
    sigma1 = _as_float64(sigma1, "sigma1").to(mu1.device)
    sigma2 = _as_float64(sigma2, "sigma2").to(mu1.device)
    if mu1.dim() != 1 or mu2.dim() != 1:
        raise GenzooError(f"the means must be vectors but have shapes {tuple(mu1.shape)} and {tuple(mu2.shape)}.")
    if mu1.shape != mu2.shape:
        raise GenzooError(f"the two feature sets have {mu1.shape[0]} and {mu2.shape[0]} dimensions; extract both "
                          "with the same feature network.")
    d = mu1.shape[0]
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise GenzooError(f"covariances must be {d} x {d} to match the means but have shapes "
                          f"{tuple(sigma1.shape)} and {tuple(sigma2.shape)}.")
    sigma1 = (sigma1 + sigma1.T) / 2  # (D, D)
    sigma2 = (sigma2 + sigma2.T) / 2  # (D, D)
    live = (sigma1 != 0).any(dim=0) & (sigma2 != 0).any(dim=0)  # (D,): varies in both sets
    root1 = _psd_factor(sigma1[live][:, live])  # (L, L), sigma1 = R1 R1^T on the live coordinates
    root2 = _psd_factor(sigma2[live][:, live])  # (L, L)
    tr_covmean = torch.linalg.svdvals(root1.T @ root2).sum() if bool(live.any()) else sigma1.new_zeros(())
    diff = mu1 - mu2  # (D,)
    return max(0.0, float(diff.dot(diff) + sigma1.trace() + sigma2.trace() - 2 * tr_covmean))


def _psd_factor(sigma: Tensor) -> Tensor:
    """R with R R^T = sigma (L, L): Cholesky when positive definite, else the PSD square root."""
    root, info = torch.linalg.cholesky_ex(sigma)  # lower triangular
    if int(info) == 0:
        return root
    evals, evecs = torch.linalg.eigh(sigma)  # (L,), (L, L)
    return evecs * evals.clamp(min=0).sqrt()  # (L, L); (U sqrt(L)) (U sqrt(L))^T = sigma


def fid_from_moments(real: RunningMoments, fake: RunningMoments) -> float:
    """``frechet_distance`` of two ``RunningMoments``, after ``check_fid_sample_count`` on both sides."""
    if real.dim is None or fake.dim is None:
        raise GenzooError("FID needs features on both sides, but one side has none; feed samples first.")
    if real.dim != fake.dim:
        raise GenzooError(f"real features have {real.dim} dimensions but fake features have {fake.dim}; extract "
                          "both with the same feature network.")
    check_fid_sample_count(min(real.count, fake.count), real.dim)
    return frechet_distance(real.mean, real.covariance, fake.mean, fake.covariance)


# ----------------------------------------------------------------------------------------------------
# Kernel distance
# ----------------------------------------------------------------------------------------------------


def _poly_kernel_sum(x: Tensor, y: Tensor, degree: float, gamma: float, coef: float, skip_diagonal: bool) -> Tensor:
    """sum_{i,j} (gamma x_i.y_j + coef)^degree, minus the i == j terms if `skip_diagonal` (x is y)."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    step = _block_size(y.shape[0])
    for start in range(0, x.shape[0], step):
        block = (x[start : start + step] @ y.T * gamma + coef) ** degree  # (b, m)
        total = total + block.sum()
    if skip_diagonal:
        total = total - ((x * y).sum(dim=1) * gamma + coef).pow(degree).sum()
    return total


def mmd2_unbiased(real: Tensor, fake: Tensor, degree: float = 3, gamma: float | None = None,
                  coef: float = 1) -> float:
    """Unbiased MMD^2 with the polynomial kernel k(x, y) = (gamma x.y + coef)^degree, gamma = 1/D by
    default, i.e. the KID kernel (x.y / d + 1)^3 (Bińkowski et al. 2018; the estimator is Lemma 6 of
    Gretton et al. 2012):

        MMD_u^2 = 1/(n(n-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j)
                  - 2/(n m) sum_{i, j} k(x_i, y_j).

    With n == m this is the estimator of torch-fidelity, torchmetrics and the KID reference code (the
    cross term keeps its diagonal). Kernel blocks are summed chunk by chunk, never held whole.

    real: (n, D), fake: (m, D), n, m >= 2.
    """
    x, y = _as_features(real, "real features"), _as_features(fake, "fake features")
    _same_dim(x, y)
    y = y.to(x.device)
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise GenzooError(f"the unbiased MMD needs at least 2 samples per side but got {n} real and {m} fake; "
                          "raise --num-samples.")
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    k_xx = _poly_kernel_sum(x, x, degree, gamma, coef, skip_diagonal=True)
    k_yy = _poly_kernel_sum(y, y, degree, gamma, coef, skip_diagonal=True)
    k_xy = _poly_kernel_sum(x, y, degree, gamma, coef, skip_diagonal=False)
    return float(k_xx / (n * (n - 1)) + k_yy / (m * (m - 1)) - 2 * k_xy / (n * m))


def kernel_inception_distance(real: Tensor, fake: Tensor, num_subsets: int = 100, subset_size: int = 1000,
                              degree: float = 3, gamma: float | None = None, coef: float = 1,
                              generator: torch.Generator | None = None) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): mean and standard deviation (ddof = 0) of ``mmd2_unbiased`` over
    `num_subsets` random subsets of m = min(subset_size, n_real, n_fake) rows drawn without replacement
    from each side, with the kernel k(x, y) = (x.y / d + 1)^3.

    Subset s takes ``randperm(n_real)[:m]`` then ``randperm(n_fake)[:m]`` from `generator` (a CPU
    generator; the global torch RNG when None), the same draws as torchmetrics' KernelInceptionDistance.

    real: (n_real, D), fake: (n_fake, D).
    """
    x, y = _as_features(real, "real features"), _as_features(fake, "fake features")
    _same_dim(x, y)
    if num_subsets < 1:
        raise GenzooError(f"KID needs at least one subset but num_subsets is {num_subsets}.")
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise GenzooError(f"KID needs subsets of at least 2 samples but got {x.shape[0]} real, {y.shape[0]} fake and "
                          f"subset_size {subset_size}; raise --num-samples.")
    scores = []
    for _ in range(num_subsets):
        real_rows = torch.randperm(x.shape[0], generator=generator)[:m].to(x.device)
        fake_rows = torch.randperm(y.shape[0], generator=generator)[:m].to(y.device)
        scores.append(mmd2_unbiased(x[real_rows], y[fake_rows], degree=degree, gamma=gamma, coef=coef))
    values = torch.tensor(scores, dtype=torch.float64)
    return float(values.mean()), float(values.std(correction=0))


# ----------------------------------------------------------------------------------------------------
# Inception score
# ----------------------------------------------------------------------------------------------------


def inception_score(*, logits: Tensor | None = None, probabilities: Tensor | None = None, splits: int = 10,
                    shuffle: bool = False, generator: torch.Generator | None = None) -> tuple[float, float]:
    """Inception score (Salimans et al. 2016):

        IS = exp( E_x KL( p(y|x) || p(y) ) ),  p(y) = E_x p(y|x),

    computed per split, with p(y) the mean over that split, and reported as the mean and standard
    deviation (ddof = 0) over the splits. Split i holds rows [i N // splits, (i + 1) N // splits), as
    in the original code and torch-fidelity. Pass exactly one of `logits` (softmax in float64, log
    probabilities from ``log_softmax``) or `probabilities` (rows summing to 1; 0 log 0 = 0).
    `shuffle` permutes the rows first with ``randperm(N, generator=generator)``.

    logits / probabilities: (N, C), N >= splits.
    """
    if (logits is None) == (probabilities is None):
        raise GenzooError("inception_score takes exactly one of logits= or probabilities=.")
    if logits is not None:
        z = _as_features(logits, "logits")  # (N, C)
        log_p = torch.log_softmax(z, dim=1)  # (N, C)
        p = log_p.exp()
    else:
        p = _as_features(probabilities, "probabilities")  # (N, C)
        if bool((p < 0).any()) or not bool(torch.allclose(p.sum(dim=1), torch.ones_like(p[:, 0]), atol=1e-4)):
            raise GenzooError("probabilities must be non-negative with rows summing to 1; pass logits= for raw scores.")
        p = p / p.sum(dim=1, keepdim=True)
        log_p = p.log()  # -inf where p == 0, masked below
    n = p.shape[0]
    if not 1 <= splits <= n:
        raise GenzooError(f"the inception score needs 1 <= splits <= samples but got {splits} splits of {n} samples; "
                          "lower the splits or raise --num-samples.")
    if shuffle:
        order = torch.randperm(n, generator=generator).to(p.device)
        p, log_p = p[order], log_p[order]
    scores = []
    for i in range(splits):
        rows = slice(i * n // splits, (i + 1) * n // splits)
        p_split, log_p_split = p[rows], log_p[rows]  # (n_i, C)
        log_marginal = p_split.mean(dim=0, keepdim=True).log()  # (1, C); > -inf wherever p_split > 0
        kl = torch.where(p_split > 0, p_split * (log_p_split - log_marginal), 0.0).sum(dim=1)  # (n_i,)
        scores.append(kl.mean().exp())
    values = torch.stack(scores)
    return float(values.mean()), float(values.std(correction=0))


# ----------------------------------------------------------------------------------------------------
# Class variety (mode collapse)
# ----------------------------------------------------------------------------------------------------


def class_variety(fake_probs: Tensor, real_labels_or_probs: Tensor, num_classes: int, min_share: float = 0.1,
                  eps: float = 1e-10) -> dict[str, Any]:
    """Mode-collapse detector from a classifier's view of the fakes.

    Each fake is assigned c_j = argmax_c p(c | fake_j) (logits work too: argmax is the same). With
    h the fake class histogram and p_fake = h / M:

    - ``classes_covered``: #{c : h_c >= 1};
    - ``classes_above_share``: #{c : p_fake(c) >= min_share / C}, classes holding at least `min_share`
      (default 10%) of the uniform share 1/C, so a handful of stray samples do not count as a mode;
    - ``kl``: KL(p_fake || p_real) = sum_c p_fake(c) log(p_fake(c) / p_real(c)), with p_real the class
      histogram of the real labels (or of the argmax of real probabilities). Both distributions get
      `eps` = 1e-10 added to every bin and are renormalised, so empty bins give finite values: a
      generator collapsed onto one real class c scores log(1 / p_real(c)) (log C for balanced data),
      a matching one scores 0, and fake mass in a class absent from the real data costs about
      log(1 / eps) = 23 per unit of mass.

    fake_probs: (M, C); real_labels_or_probs: (N,) integer labels in [0, C) or (N, C) probabilities.
    Returns the two counts, ``histogram`` (C counts), ``fake_distribution``, ``real_distribution``
    (lists of C floats), ``kl``, ``num_classes`` and ``min_share``.
    """
    if num_classes < 1:
        raise GenzooError(f"class variety needs at least one class but num_classes is {num_classes}.")
    fake = _as_features(fake_probs, "fake class probabilities")  # (M, C)
    if fake.shape[1] != num_classes or fake.shape[0] == 0:
        raise GenzooError(f"fake class probabilities must have shape (samples >= 1, {num_classes}) but have "
                          f"{tuple(fake.shape)}; use the classifier of the feature network.")
    fake_hist = torch.bincount(fake.argmax(dim=1).cpu(), minlength=num_classes).to(torch.float64)  # (C,)
    real = torch.as_tensor(real_labels_or_probs)
    if real.dim() == 2:
        real = _as_features(real, "real class probabilities")  # (N, C)
        if real.shape[1] != num_classes:
            raise GenzooError(f"real class probabilities have {real.shape[1]} classes but num_classes is "
                              f"{num_classes}.")
        real_labels = real.argmax(dim=1).cpu()
    elif real.dim() == 1:
        if real.is_floating_point() or real.is_complex():
            if not bool(torch.all(real == real.round())):
                raise GenzooError("real labels must be integers; pass (N, C) probabilities for soft labels.")
        real_labels = real.cpu().to(torch.int64)
        if real_labels.numel() and (int(real_labels.min()) < 0 or int(real_labels.max()) >= num_classes):
            raise GenzooError(f"real labels must lie in [0, {num_classes}) but range over "
                              f"[{int(real_labels.min())}, {int(real_labels.max())}].")
    else:
        raise GenzooError(f"real labels must be (N,) integers or (N, {num_classes}) probabilities but have shape "
                          f"{tuple(real.shape)}.")
    if real_labels.numel() == 0:
        raise GenzooError("class variety needs at least one real label.")
    real_hist = torch.bincount(real_labels, minlength=num_classes).to(torch.float64)  # (C,)
    p_fake = fake_hist / fake_hist.sum()
    p_real = real_hist / real_hist.sum()
    p_fake_eps = (p_fake + eps) / (1 + num_classes * eps)
    p_real_eps = (p_real + eps) / (1 + num_classes * eps)
    kl = float((p_fake_eps * (p_fake_eps.log() - p_real_eps.log())).sum())
    return {
        "classes_covered": int((fake_hist >= 1).sum()),
        "classes_above_share": int((p_fake >= min_share / num_classes).sum()),
        "histogram": [int(v) for v in fake_hist.tolist()],
        "fake_distribution": p_fake.tolist(),
        "real_distribution": p_real.tolist(),
        "kl": kl,
        "num_classes": num_classes,
        "min_share": min_share,
    }


# ----------------------------------------------------------------------------------------------------
# Reconstruction
# ----------------------------------------------------------------------------------------------------


def mse_psnr(x: Tensor, x_hat: Tensor) -> dict[str, float]:
    """Reconstruction error of images in [-1, 1].

    Both are first mapped to [0, 1] by u = (x + 1) / 2 (not clamped), so the peak value is 1:

        MSE = mean over all elements of (u - u_hat)^2 = mean (x - x_hat)^2 / 4,
        PSNR = 10 log10(1 / MSE) dB   (inf when MSE = 0).

    The mean runs over the whole batch, so PSNR is that of the pooled MSE (torchmetrics'
    PeakSignalNoiseRatio with data_range=1 on [0, 1] images), not a mean of per-image PSNRs.

    x, x_hat: the same shape, e.g. (B, C, H, W).
    """
    a, b = _as_float64(x, "images"), _as_float64(x_hat, "reconstructions")
    if a.shape != b.shape:
        raise GenzooError(f"images have shape {tuple(a.shape)} but reconstructions have {tuple(b.shape)}; "
                          "the model must reconstruct at the input size.")
    if a.numel() == 0:
        raise GenzooError("mse_psnr got no pixels; pass at least one image.")
    mse = float(((a - b.to(a.device)) / 2).square().mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(1 / mse)
    return {"mse": mse, "psnr": psnr}

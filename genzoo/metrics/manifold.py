"""k-nearest-neighbour manifold metrics over feature arrays: precision, recall, density, coverage.

Papers:

- Improved precision and recall: T. Kynkäänniemi, T. Karras, S. Laine, J. Lehtinen, T. Aila,
  "Improved Precision and Recall Metric for Assessing Generative Models", NeurIPS 2019.
- Density and coverage: M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi, J. Yoo, "Reliable Fidelity and
  Diversity Metrics for Generative Models", ICML 2020.

Every decision is a comparison ||a - b|| < r with r a k-th neighbour distance, strict ``<`` as in
prdc's ``compute_prdc``. Distances through the matrix product, ||a||^2 + ||b||^2 - 2 a.b (what
``torch.cdist`` and scikit-learn do for speed), carry an absolute error of about D eps (||a||^2 +
||b||^2) in the squared distance, ~4e-7 in the distance of two identical 128-d feature vectors: a
memorised sample (a fake equal, or nearly equal, to a real) then falls on either side of a radius
that should be 0 or tiny. Here the matrix product only sorts the pairs: where its value and a
rigorous bound on its error cannot decide a comparison, the squared distance is recomputed from the
differences, sum_d (a_d - b_d)^2, which is 0 for identical vectors and accurate to ~D eps relative
otherwise. The k-th neighbour radii are exact in the same sense. The result is what the comparisons
give on the exact distances (up to that relative rounding), at about the cost of the matrix product.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genzoo.errors import GenzooError
from genzoo.metrics.functional import _as_features, _same_dim

__all__ = ["density_coverage", "precision_recall"]

# Pairwise blocks are computed this many float64 entries at a time (32 MiB), so 10k x 10k sets never
# hold a full distance matrix; differences for exact distances are taken this many elements at a time.
_BLOCK_ELEMENTS = 1 << 22


_SPARE = 8  # rows beyond the k + 1 nearest that get exact distances without a second look


def _block_size(cols: int) -> int:
    return max(1, _BLOCK_ELEMENTS // max(1, cols))


class _Pairs:
    """Squared distances between the rows of x (n, D) and y (m, D), float64, block by block."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y
        x_sq, y_sq = x.square().sum(dim=1, keepdim=True), y.square().sum(dim=1, keepdim=True)  # (n, 1), (m, 1)
        ones_x, ones_y = torch.ones_like(x_sq), torch.ones_like(y_sq)
        self.x_aug = torch.cat([x, x_sq, ones_x], dim=1)  # (n, D + 2): [a, ||a||^2, 1]
        self.y_aug = torch.cat([-2 * y, ones_y, y_sq], dim=1)  # (m, D + 2): [-2 b, 1, ||b||^2]
        # |fl(||a||^2 + ||b||^2 - 2 a.b) - ||a - b||^2| <= (2 gamma_{D+2} + 2 eps)(||a||^2 + ||b||^2), with
        # gamma_D = D eps / (1 - D eps) (Higham, Accuracy and Stability of Numerical Algorithms, 3.1);
        # doubled, for the rounding of the norms themselves, and taken at the largest norms: one bound for all.
        largest = float(x_sq.max()) + float(y_sq.max())
        self.error = 4 * (x.shape[1] + 4) * torch.finfo(torch.float64).eps * largest

    def approximate(self, rows: slice) -> Tensor:
        """Squared distances of x[rows] to every y through one matrix product (b, m), within +-self.error."""
        return self.x_aug[rows] @ self.y_aug.T  # (b, m)

    def exact(self, rows: Tensor, cols: Tensor) -> Tensor:
        """sum_d (x[rows] - y[cols])^2 for index tensors of one shape -> that shape."""
        rows, cols = torch.broadcast_tensors(rows, cols)
        flat_rows, flat_cols = rows.reshape(-1), cols.reshape(-1)
        out = torch.empty(flat_rows.shape[0], dtype=self.x.dtype, device=self.x.device)
        step = _block_size(self.x.shape[1])
        for start in range(0, flat_rows.shape[0], step):
            part = slice(start, start + step)
            out[part] = (self.x[flat_rows[part]] - self.y[flat_cols[part]]).square().sum(dim=1)
        return out.view(rows.shape)


def _knn_radii_sq(x: Tensor, k: int) -> Tensor:
    """Squared distance from each row of x (n, D) to its k-th nearest other row: the (k+1)-th smallest
    squared distance counting the row itself (as prdc). Returns (n,).

    A row with k or more exact copies has radius 0 (duplicates, a collapsed generator). For the others, a
    row j can be among the k+1 nearest of row i only if approx_ij - error <= ceiling_i, the largest
    approx + error among the k+1 nearest by the matrix product; all such j get exact distances."""
    pairs, radii, n = _Pairs(x, x), [], x.shape[0]
    _, inverse, counts = torch.unique(x, dim=0, return_inverse=True, return_counts=True)
    copies = counts[inverse]  # (n,): rows equal to each row, itself included
    width = min(n, k + 1 + _SPARE)  # nearest rows looked at by default
    step = _block_size(n)
    for start in range(0, n, step):
        rows = slice(start, start + step)
        approx = pairs.approximate(rows)  # (b, n)
        nearest = approx.topk(width, dim=1, largest=False)  # (b, width), ascending
        ceiling = nearest.values[:, k : k + 1] + pairs.error  # (b, 1) >= the exact (k+1)-th smallest
        candidate = nearest.values - pairs.error <= ceiling  # (b, width)
        index = torch.arange(start, min(start + step, n), device=x.device)[:, None]  # (b, 1)
        exact = pairs.exact(index, nearest.indices).masked_fill(~candidate, torch.inf)  # (b, width)
        radius = exact.kthvalue(k + 1, dim=1).values  # (b,)
        duplicated = copies[rows] > k  # (b,)
        radius[duplicated] = 0.0
        crowded = (candidate[:, -1] & (width < n) & ~duplicated).nonzero().flatten()  # more candidates than looked at
        if crowded.numel():  # many near-equal, not equal, distances: whole rows, exactly (rare)
            rows_exact = pairs.exact(index[crowded], torch.arange(n, device=x.device)[None, :])  # (c, n)
            rows_exact = rows_exact.masked_fill(approx[crowded] - pairs.error > ceiling[crowded], torch.inf)
            radius[crowded] = rows_exact.kthvalue(k + 1, dim=1).values
        radii.append(radius)
    return torch.cat(radii)


def _manifold_scores(real: Tensor, fake: Tensor, k: int, what: str) -> dict[str, float]:
    x, y = _as_features(real, "real features"), _as_features(fake, "fake features")
    _same_dim(x, y)
    y = y.to(x.device)
    n, m = x.shape[0], y.shape[0]
    if k < 1:
        raise GenzooError(f"{what} needs k >= 1 nearest neighbours but k is {k}.")
    if n <= k or m <= k:
        raise GenzooError(f"{what} with k={k} needs more than {k} samples per side but got {n} real and {m} fake; "
                          "raise --num-samples or lower k.")
    real_radii = _knn_radii_sq(x, k)  # (n,) squared
    fake_radii = _knn_radii_sq(y, k)[None, :]  # (1, m) squared
    pairs = _Pairs(x, y)
    fake_in_real_balls = torch.zeros(m, dtype=torch.float64, device=x.device)  # per fake: #reals whose ball holds it
    real_in_fake_ball = torch.zeros(n, dtype=torch.bool, device=x.device)  # per real: inside some fake ball
    real_covered = torch.zeros(n, dtype=torch.bool, device=x.device)  # per real: some fake inside its ball
    step = _block_size(m)
    for start in range(0, n, step):
        rows = slice(start, start + step)
        approx = pairs.approximate(rows)  # (b, m) squared distances, within +-error
        radii = real_radii[rows, None]  # (b, 1)
        in_real = approx < radii - pairs.error  # (b, m): fake j certainly inside the ball of real i
        in_fake = approx < fake_radii - pairs.error  # (b, m): real i certainly inside the ball of fake j
        unsure = ((approx < radii + pairs.error) & ~in_real) | ((approx < fake_radii + pairs.error) & ~in_fake)
        if bool(unsure.any()):  # within the error of a radius: decided on the exact distance
            i, j = unsure.nonzero(as_tuple=True)
            exact = pairs.exact(i + start, j)  # (P,)
            in_real[i, j] = exact < radii[i, 0]
            in_fake[i, j] = exact < fake_radii[0, j]
        fake_in_real_balls += in_real.sum(dim=0)
        real_in_fake_ball[rows] = in_fake.any(dim=1)
        real_covered[rows] = in_real.any(dim=1)  # the nearest fake is inside iff some fake is
    return {
        "precision": float((fake_in_real_balls > 0).double().mean()),
        "recall": float(real_in_fake_ball.double().mean()),
        "density": float(fake_in_real_balls.mean() / k),
        "coverage": float(real_covered.double().mean()),
    }


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), with the k-NN manifold
    f(phi, Phi) = 1 if ||phi - phi'|| <= ||phi' - NN_k(phi', Phi)|| for some phi' in Phi:

        precision = 1/M sum_j f(fake_j, Real),   recall = 1/N sum_i f(real_i, Fake),

    where NN_k excludes the point itself and the comparison is strict ``<`` as in prdc. Distances are
    exact where a comparison depends on it (module docstring), in blocks, never a whole N x M matrix.

    real: (N, D), fake: (M, D), N, M > k. Returns {"precision", "recall"}.
    """
    scores = _manifold_scores(real, fake, k, "precision/recall")
    return {"precision": scores["precision"], "recall": scores["recall"]}


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020), with B(x, r) the open ball and
    NND_k(x) the distance from real x to its k-th nearest other real:

        density  = 1/(k M) sum_j sum_i 1[ fake_j in B(real_i, NND_k(real_i)) ],
        coverage = 1/N sum_i 1[ exists j: fake_j in B(real_i, NND_k(real_i)) ].

    real: (N, D), fake: (M, D), N, M > k. Returns {"density", "coverage"}.
    """
    scores = _manifold_scores(real, fake, k, "density/coverage")
    return {"density": scores["density"], "coverage": scores["coverage"]}

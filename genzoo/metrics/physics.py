"""Physics-grade evaluation of generated calorimeter showers against the simulation they imitate.

A generated shower (an image in [-1, 1]) is decoded to cell energies in GeV and zero-suppressed at
the simulation's threshold (`genzoo.data.calo.decode`), exactly as the simulated ones, and both are
summarised by the observables physicists check (`observables`), per shower:
    energy          total visible energy (GeV): the response and, per class, the resolution
    energy_l        energy in layer l (GeV);        fraction_l = energy_l / energy
    depth           energy-weighted mean depth, sum_l energy_l z_l / energy, z_l the layer centre (X0)
    width_l         lateral width of layer l: sqrt((var_x + var_y) / 2) of the energy-weighted cell
                    positions (cells); 0 for an empty layer
    centroid_x, _y  energy-weighted centre of the middle layer, in cells from the grid's centre
    occupancy_l     share of layer l's cells above the threshold (sparsity)
Scores (registered metrics; each `Score` says n_real, n_fake, reference and units):
- `physics`: per observable, the 1-D Wasserstein distance W1 = integral |F_real - F_fake| (in the
  observable's units) and the separation power S = 1/2 sum_i (h_i - g_i)^2 / (h_i + g_i) of
  normalised histograms (30 bins over the real 0.5-99.5% range, outer values in the end bins; 0 =
  identical, 1 = disjoint; CaloChallenge, Krause et al. 2024).
- `fpd`, `kpd`: the Fréchet and kernel physics distances on all observables (Kansal et al., "Evaluating
  generative models in collider physics", PRD 107, 076017, 2023; jetnet's definitions): features divided
  by the real set's max |value|; FPD = the Fréchet distance of Gaussians fitted to bootstrap batches of
  N from each side, averaged over 20 batches at 10 sizes evenly spaced in 1/N from N = 0.4 M to M
  (M = min(50,000, n_real, n_fake)), extrapolated linearly to 1/N = 0 (value, fit error); KPD = the
  unbiased MMD^2 with the kernel (x.y/d + 1)^4 on 10 bootstrap batches of min(5,000, n) per side,
  median and half the 16-84% range. Both ~0 for identical distributions.
- `calo-auc`: a classifier two-sample test: an MLP trained on half of the showers (observables and
  log cell energies, standardised) to tell generated from simulated, its ROC AUC on the other half
  (0.5: indistinguishable; 1: always told apart; CaloChallenge's "classifier metric").
- `calo-response`: for a conditional model, per class (particle and energy): the ratio of generated to
  simulated mean energy (response) and of their relative spreads sigma/mu (resolution); 1 is perfect.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from genzoo.errors import GenzooError
from genzoo.metrics.context import EvalContext, Score
from genzoo.metrics.functional import frechet_distance
from genzoo.registry import METRICS

UNITS = {"energy": "GeV", "fraction": "share", "depth": "X0", "width": "cells", "centroid": "cells", "occupancy": "share"}


# ----------------------------------------------------------------------------- observables


def observables(energies: Tensor, layer_depths: tuple[float, ...] = (0.0, 3.0, 19.0, 25.0)) -> dict[str, Tensor]:
    """Cell energies (N, L, H, W) in GeV (zero-suppressed) -> {name: (N,)} float64, see the module docstring."""
    e = energies.double()
    n, layers, height, width = e.shape
    per_layer = e.sum((2, 3))  # (N, L)
    total = per_layer.sum(1)  # (N,)
    safe_total = total.clamp(min=1e-12)
    bounds = torch.tensor(layer_depths, dtype=torch.float64)
    centres = (bounds[1:] + bounds[:-1]) / 2  # (L,) X0
    out = {"energy": total}
    for layer in range(layers):
        out[f"energy_{layer}"] = per_layer[:, layer]
    for layer in range(layers):
        out[f"fraction_{layer}"] = per_layer[:, layer] / safe_total
    out["depth"] = (per_layer * centres).sum(1) / safe_total
    y = torch.arange(height, dtype=torch.float64) - (height - 1) / 2  # cell centres, from the grid's centre
    x = torch.arange(width, dtype=torch.float64) - (width - 1) / 2
    safe = per_layer.clamp(min=1e-12)[..., None]  # (N, L, 1)
    mean_x = (e.sum(2) * x).sum(-1, keepdim=True) / safe  # (N, L, 1)
    mean_y = (e.sum(3) * y).sum(-1, keepdim=True) / safe
    var_x = (e.sum(2) * (x - mean_x) ** 2).sum(-1) / safe[..., 0]  # (N, L)
    var_y = (e.sum(3) * (y - mean_y) ** 2).sum(-1) / safe[..., 0]
    widths = ((var_x + var_y) / 2).sqrt() * (per_layer > 0)  # (N, L)
    for layer in range(layers):
        out[f"width_{layer}"] = widths[:, layer]
    middle = layers // 2
    out["centroid_x"], out["centroid_y"] = mean_x[:, middle, 0], mean_y[:, middle, 0]
    occupancy = (e > 0).double().mean((2, 3))  # (N, L)
    for layer in range(layers):
        out[f"occupancy_{layer}"] = occupancy[:, layer]
    return out


def unit(name: str) -> str:
    return UNITS[name.split("_")[0]]


# ----------------------------------------------------------------------------- distances


def wasserstein_1d(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """W1 between two empirical 1-D distributions: the integral of |F_a - F_b| over the merged sorted values."""
    a, b = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    values = np.sort(np.concatenate([a, b]))  # (n + m,)
    steps = np.diff(values)  # (n + m - 1,)
    cdf_a = np.searchsorted(a, values[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, values[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * steps))


def separation_power(real: Tensor | np.ndarray, fake: Tensor | np.ndarray, bins: int = 30) -> float:
    """S = 1/2 sum_i (h_i - g_i)^2 / (h_i + g_i) of normalised histograms h (real), g (fake) over `bins`
    equal bins spanning the real values' 0.5-99.5% quantiles, values outside put in the end bins."""
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    low, high = np.quantile(real, [0.005, 0.995])
    if high <= low:  # (nearly) constant: one bin around it
        high = low + 1e-12
    edges = np.linspace(low, high, bins + 1)
    h = np.bincount(np.clip(np.searchsorted(edges, real, side="right") - 1, 0, bins - 1), minlength=bins) / len(real)
    g = np.bincount(np.clip(np.searchsorted(edges, fake, side="right") - 1, 0, bins - 1), minlength=bins) / len(fake)
    both = h + g
    return float(0.5 * np.sum(np.where(both > 0, (h - g) ** 2 / np.where(both > 0, both, 1), 0.0)))


def normalise(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both divided by the real set's max |value| per feature (1 where that is 0), as jetnet does."""
    scale = np.abs(real).max(0)
    scale[scale == 0] = 1
    return real / scale, fake / scale


def _covariance(x: np.ndarray) -> np.ndarray:
    return np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_physics_distance(real: np.ndarray, fake: np.ndarray, min_samples: int | None = None,
                             max_samples: int | None = None, num_batches: int = 20, num_points: int = 10,
                             seed: int = 42) -> tuple[float, float]:
    """FPD (Kansal et al. 2023): the Fréchet distance at batch sizes evenly spaced in 1/N, extrapolated
    to N -> infinity by a least-squares line (intercept and slope >= 0); (intercept, its standard error).
    real, fake: (n, D) observables, normalised here."""
    x, y = normalise(np.asarray(real, np.float64), np.asarray(fake, np.float64))
    max_samples = max_samples or min(50_000, len(x), len(y))
    min_samples = min_samples or max(2, int(max_samples * 0.4))
    sizes = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    means = []
    for size in sizes:
        values = []
        for _ in range(num_batches):
            a, b = x[rng.choice(len(x), size=size)], y[rng.choice(len(y), size=size)]
            values.append(frechet_distance(torch.from_numpy(a.mean(0)), torch.from_numpy(_covariance(a)),
                                           torch.from_numpy(b.mean(0)), torch.from_numpy(_covariance(b))))
        means.append(np.mean(values))
    return _nonnegative_line(1 / sizes, np.asarray(means))


def _nonnegative_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares y = c + s x with c, s >= 0: (c, standard error of c from s^2 (J^T J)^-1)."""
    design = np.stack([np.ones_like(x), x], axis=1)  # (P, 2)
    candidates = [np.linalg.lstsq(design, y, rcond=None)[0], np.array([0.0, max(0.0, x @ y / (x @ x))]),
                  np.array([max(0.0, y.mean()), 0.0]), np.zeros(2)]
    feasible = [c for c in candidates if (c >= 0).all()]
    best = min(feasible, key=lambda c: float(np.sum((design @ c - y) ** 2)))
    residual = float(np.sum((design @ best - y) ** 2)) / max(len(y) - 2, 1)
    covariance = np.linalg.pinv(design.T @ design) * residual
    return float(best[0]), float(np.sqrt(covariance[0, 0]))


def kernel_physics_distance(real: np.ndarray, fake: np.ndarray, num_batches: int = 10, batch_size: int | None = None,
                            seed: int = 42) -> tuple[float, float]:
    """KPD (Kansal et al. 2023): unbiased MMD^2 with k(x, y) = (x.y / d + 1)^4 over `num_batches`
    bootstrap batches; (median, half the 16.275-83.725% range). real, fake: (n, D), normalised here."""
    x, y = normalise(np.asarray(real, np.float64), np.asarray(fake, np.float64))
    batch_size = batch_size or min(5_000, len(x), len(y))
    values = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        a, b = x[rng.choice(len(x), size=batch_size)], y[rng.choice(len(y), size=batch_size)]
        values.append(_mmd_unbiased(a, b, degree=4))
    low, high = np.percentile(values, [16.275, 83.725])
    return float(np.median(values)), float((high - low) / 2)


def _mmd_unbiased(a: np.ndarray, b: np.ndarray, degree: int) -> float:
    """1/(m(m-1)) sum_{i!=j} k(a_i, a_j) + 1/(n(n-1)) sum_{i!=j} k(b_i, b_j) - 2/(mn) sum k(a_i, b_j)."""
    gamma = 1.0 / a.shape[1]
    m, n = len(a), len(b)
    k_aa, k_bb, k_ab = ((p @ q.T * gamma + 1.0) ** degree for p, q in ((a, a), (b, b), (a, b)))
    return float((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1)) + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
                 - 2 * k_ab.mean())


def roc_auc(scores: Tensor, labels: Tensor) -> float:
    """ROC AUC = P(score of a positive > score of a negative) + 1/2 P(tie): the Mann-Whitney U / (n+ n-)."""
    scores, labels = scores.double().flatten(), labels.bool().flatten()
    order = torch.argsort(scores, stable=True)
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    unique, inverse = torch.unique(scores, return_inverse=True)  # average ranks over ties
    ranks = (torch.zeros(len(unique), dtype=torch.float64).index_add_(0, inverse, ranks)
             / torch.bincount(inverse, minlength=len(unique)).double())[inverse]
    positives, negatives = int(labels.sum()), int((~labels).sum())
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def classifier_auc(real: Tensor, fake: Tensor, seed: int = 0, epochs: int = 20, hidden: int = 128) -> float:
    """Train an MLP on half of real (label 0) and fake (1) rows (n, D) to tell them apart; its ROC AUC on the
    other half. Inputs standardised by the training half's mean and std; Adam 1e-3, batches of 256."""
    generator = torch.Generator().manual_seed(seed)
    n = min(len(real), len(fake))
    x = torch.cat([real[:n], fake[:n]]).float()  # (2n, D)
    y = torch.cat([torch.zeros(n), torch.ones(n)])  # (2n,)
    order = torch.randperm(2 * n, generator=generator)
    train, test = order[: n], order[n:]
    mean, std = x[train].mean(0), x[train].std(0).clamp(min=1e-6)
    x = (x - mean) / std
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
        for _ in range(epochs):
            for batch in train[torch.randperm(len(train), generator=generator)].split(256):
                loss = nn.functional.binary_cross_entropy_with_logits(network(x[batch]).squeeze(1), y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            return roc_auc(network(x[test]).squeeze(1), y[test])


# ----------------------------------------------------------------------------- from an evaluation context


def require_showers(data: object) -> None:
    """The physics metrics' `check_data`: the reference must be calorimeter showers."""
    from genzoo.data.calo import Showers

    if not isinstance(data, Showers):
        raise GenzooError("the physics metrics need calorimeter showers as the reference (data.name=calo or calo-data); "
                          "drop them from --metrics (train.eval_metrics) for other data.")


def _showers(ctx: EvalContext) -> dict:
    """Decoded real and generated showers, their observables and labels; computed once per context."""
    cached = getattr(ctx, "_calo_showers", None)
    if cached is not None:
        return cached
    from genzoo.data.calo import decode

    require_showers(ctx.real_data)
    if ctx.fake_batches is None:
        raise GenzooError("the physics metrics need generated showers; evaluate a run whose model generates.")
    real_images, real_labels = [], []
    for batch in ctx.real_dict_batches():
        real_images.append(batch["image"].cpu())
        real_labels.append(batch["label"].cpu())
    model = ctx.model
    conditional = bool(getattr(model, "conditional", False))
    fake_labels = torch.arange(ctx.num_fake) % model.num_classes if conditional else None  # (n_fake,) every class in turn
    if conditional:  # labels given explicitly: batches of generate(n) would each restart at class 0
        generator = torch.Generator(device=model.device).manual_seed(ctx.seed)
        fake_images = torch.cat([model.generate(len(labels), labels=labels.to(model.device), generator=generator).float().cpu()
                                 for labels in fake_labels.split(ctx.batch_size)])
    else:
        fake_images = torch.cat([images.float().cpu() for images in ctx.fake_batches()])
    real, fake = decode(torch.cat(real_images)), decode(fake_images)
    cached = {"real": real, "fake": fake, "real_labels": torch.cat(real_labels), "fake_labels": fake_labels,
              "real_obs": observables(real), "fake_obs": observables(fake),
              "class_names": ctx.real_data.class_names}
    ctx._calo_showers = cached
    return cached


def _protocol(ctx: EvalContext, metric: str, showers: dict, **extra: object) -> dict:
    from genzoo.data.calo import SIMULATION

    return {"metric": metric, "n_real": len(showers["real"]), "n_fake": len(showers["fake"]), "reference": ctx.reference,
            "seed": ctx.seed, "ema": ctx.protocol.get("ema"), "sampler": ctx.protocol.get("sampler"),
            "run": ctx.protocol.get("run"), "threshold_gev": SIMULATION.threshold, **extra}


def _matrix(obs: dict[str, Tensor]) -> np.ndarray:
    return torch.stack(list(obs.values()), dim=1).numpy()  # (N, D)


@METRICS.register("physics")
def physics(ctx: EvalContext) -> list[Score]:
    """Calorimeter showers: W1 and separation power of each observable (energy, layers, depth, widths, ...)."""
    showers = _showers(ctx)
    scores = []
    for name, real in showers["real_obs"].items():
        fake = showers["fake_obs"][name]
        scores.append(Score(f"w1-{name}", wasserstein_1d(real, fake), None, _protocol(ctx, "w1", showers, units=unit(name))))
        scores.append(Score(f"sep-{name}", separation_power(real, fake), None, _protocol(ctx, "separation power", showers,
                                                                                          bins=30)))
    return scores


@METRICS.register("fpd")
def fpd(ctx: EvalContext) -> list[Score]:
    """Fréchet physics distance on the shower observables (Kansal et al. 2023, jetnet's definition)."""
    showers = _showers(ctx)
    value, error = frechet_physics_distance(_matrix(showers["real_obs"]), _matrix(showers["fake_obs"]), seed=ctx.seed)
    return [Score("fpd", value, error, _protocol(ctx, "fpd", showers, observables=list(showers["real_obs"])))]


@METRICS.register("kpd")
def kpd(ctx: EvalContext) -> list[Score]:
    """Kernel physics distance on the shower observables (Kansal et al. 2023, jetnet's definition)."""
    showers = _showers(ctx)
    value, error = kernel_physics_distance(_matrix(showers["real_obs"]), _matrix(showers["fake_obs"]), seed=ctx.seed)
    return [Score("kpd", value, error, _protocol(ctx, "kpd", showers, observables=list(showers["real_obs"])))]


def auc_inputs(energies: Tensor, obs: dict[str, Tensor]) -> Tensor:
    """What the two-sample classifier reads: log(1 + E / 1 MeV) of every cell, and the observables. (N, F)."""
    return torch.cat([torch.log1p(energies.flatten(1) / 0.001), torch.stack(list(obs.values()), dim=1)], dim=1)


@METRICS.register("calo-auc")
def calo_auc(ctx: EvalContext) -> list[Score]:
    """Classifier two-sample test on calorimeter showers: ROC AUC of an MLP telling generated from simulated (0.5 best)."""
    showers = _showers(ctx)
    auc = classifier_auc(auc_inputs(showers["real"], showers["real_obs"]), auc_inputs(showers["fake"], showers["fake_obs"]),
                         seed=ctx.seed)
    return [Score("calo-auc", auc, None, _protocol(ctx, "calo-auc", showers, inputs="log cell energies + observables",
                                                   network="MLP 128-128, 20 epochs, half train / half test"))]


@METRICS.register("calo-response")
def calo_response(ctx: EvalContext) -> list[Score]:
    """Per class (particle, energy): generated / simulated mean energy and relative spread (1 is perfect)."""
    showers = _showers(ctx)
    if showers["fake_labels"] is None:
        raise GenzooError("calo-response compares classes, and this model is not conditional; use physics, fpd or kpd.")
    scores = []
    for k, name in enumerate(showers["class_names"] or []):
        real = showers["real_obs"]["energy"][showers["real_labels"] == k]
        fake = showers["fake_obs"]["energy"][showers["fake_labels"] == k]
        if len(real) < 2 or len(fake) < 2:
            continue
        protocol = _protocol(ctx, "calo-response", showers, n_real_class=len(real), n_fake_class=len(fake))
        scores.append(Score(f"response {name}", float(fake.mean() / real.mean()), None, protocol))
        resolution = (fake.std() / fake.mean()) / (real.std() / real.mean())
        scores.append(Score(f"resolution {name}", float(resolution) if math.isfinite(resolution) else float("nan"), None,
                            protocol))
    return scores


for _metric in (physics, fpd, kpd, calo_auc, calo_response):  # checked before training (genzoo.callbacks.Evaluation)
    _metric.check_data = require_showers

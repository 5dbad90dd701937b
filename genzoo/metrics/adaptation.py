"""The proxy A-distance between a source and a target domain (Ben-David, Blitzer, Crammer and Pereira,
"Analysis of Representations for Domain Adaptation", NIPS 2007; Ganin et al., "Domain-Adversarial
Training of Neural Networks", JMLR 2016, compare DANN's representations with a standard network's by it).

A linear classifier is trained to tell source from target representations, and its error epsilon on
held-out representations gives
    d_A = 2 (1 - 2 epsilon),   clamped to [0, 2]
(0: the domains cannot be told apart, epsilon = 1/2; 2: they are linearly separable, epsilon = 0; an
error above 1/2 is chance, d_A = 0). Ben-David et al. and Ganin et al. used a linear SVM; here it is an
L2-regularised logistic regression, the objective of scikit-learn's `LogisticRegression(C=1)`
(sum of the log-losses + ||w||^2 / (2C), the intercept not penalised), on standardised features,
minimised in float64 with L-BFGS: deterministic, and no scikit-learn needed (tests/test_adaptation.py
checks it against scikit-learn's LogisticRegression and LinearSVC).
Protocol: n = min(n_source, n_target) of each domain (equal classes), a seeded half of each to train
on, the other half to score; standardisation fitted on the training half.

`genzoo eval RUN --metrics a-distance` scores a model that can `encode` (e.g. `dann`) on its source
and target evaluation images (use --split test): d_A of its features, and in the protocol d_A of the
raw pixels (the same protocol on the flattened images), the distance before any network.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genzoo.errors import GenzooError
from genzoo.metrics.context import EvalContext, Score
from genzoo.registry import METRICS


def a_distance_from_error(error: float) -> float:
    """d_A = 2 (1 - 2 epsilon) (Ben-David et al. 2007), clamped to [0, 2]."""
    return min(2.0, max(0.0, 2.0 * (1.0 - 2.0 * error)))


def fit_logistic_regression(x: Tensor, y: Tensor, c: float = 1.0, max_iter: int = 200) -> tuple[Tensor, Tensor]:
    """Weights (D,) and intercept () minimising sum_i log(1 + exp(-s_i (w . x_i + b))) + ||w||^2 / (2c),
    s_i = 2 y_i - 1 in {-1, 1}: scikit-learn's LogisticRegression(C=c) objective, in float64 with L-BFGS."""
    x, y = x.double(), y.double()  # (N, D), (N,) in {0, 1}
    weights = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)  # (D + 1,): w and b
    optimizer = torch.optim.LBFGS([weights], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                                  history_size=20, line_search_fn="strong_wolfe")

    def objective() -> Tensor:
        optimizer.zero_grad()
        logits = x @ weights[:-1] + weights[-1]  # (N,)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum")
        loss = loss + weights[:-1].square().sum() / (2 * c)
        loss.backward()
        return loss

    optimizer.step(objective)
    weights = weights.detach()
    return weights[:-1], weights[-1]


def proxy_a_distance(source: Tensor, target: Tensor, seed: int = 0, c: float = 1.0) -> tuple[float, float]:
    """(d_A, held-out error epsilon) of a linear domain classifier on representations (N_s, D) and (N_t, D)."""
    source, target = source.flatten(1).double().cpu(), target.flatten(1).double().cpu()  # (N_s, D), (N_t, D)
    n = min(len(source), len(target))
    if n < 4:
        raise GenzooError(f"the A-distance needs at least 4 images of each domain, not {n}; give more (--num-real).")
    generator = torch.Generator().manual_seed(seed)
    source = source[torch.randperm(len(source), generator=generator)[:n]]  # (n, D)
    target = target[torch.randperm(len(target), generator=generator)[:n]]  # (n, D)
    half = n // 2
    train = torch.cat([source[:half], target[:half]])  # (2 half, D)
    held_out = torch.cat([source[half:], target[half:]])  # (2 (n - half), D)
    train_y = torch.cat([torch.zeros(half), torch.ones(half)])
    held_out_y = torch.cat([torch.zeros(n - half), torch.ones(n - half)])
    mean, std = train.mean(0), train.std(0).clamp_min(1e-12)  # standardised on the training half
    weights, bias = fit_logistic_regression((train - mean) / std, train_y, c)
    predicted = (((held_out - mean) / std) @ weights + bias > 0).double()  # (2 (n - half),)
    error = (predicted != held_out_y.double()).double().mean().item()
    return a_distance_from_error(error), error


# ----------------------------------------------------------------------------- the metric


def _images(data, count: int, batch_size: int) -> list[Tensor]:  # noqa: ANN001
    """The first `count` images of a dataset, as batches (b, C, H, W) in [-1, 1]."""
    return [data.batch(torch.arange(start, min(start + batch_size, count)))["image"] for start in range(0, count, batch_size)]


@METRICS.register("a-distance")
def a_distance(ctx: EvalContext) -> list[Score]:
    """Proxy A-distance (0: domains indistinguishable, 2: linearly separable) between the source's and the
    target's features (`encode`) of a domain-adaptation run; the raw pixels' in the protocol."""
    model = ctx.model
    if not callable(getattr(model, "encode", None)):
        raise GenzooError("the a-distance metric needs a model with features (encode), such as a dann run; "
                          "drop a-distance from --metrics.")
    if not callable(getattr(ctx.real_data, "target_dataset", None)):
        raise GenzooError("the a-distance metric needs source and target data (a run with data.target=NAME); "
                          "drop a-distance from --metrics.")
    source, target = ctx.real_data.source_data, ctx.real_data.target_dataset()
    counts = [min(len(source), ctx.num_real), min(len(target), ctx.num_real)]
    images = [_images(data, count, ctx.batch_size) for data, count in zip((source, target), counts)]
    with torch.no_grad():
        features = [torch.cat([model.encode(x.to(ctx.device)).float().cpu() for x in batches]) for batches in images]
    value, error = proxy_a_distance(*features, seed=ctx.seed)
    pixels, pixel_error = proxy_a_distance(*(torch.cat(batches) for batches in images), seed=ctx.seed)
    protocol = {"metric": "a-distance", "n_source": counts[0], "n_target": counts[1], "held_out_error": error,
                "classifier": "L2 logistic regression (C=1) on standardised features, half of each domain held out",
                "pixels_a_distance": pixels, "pixels_held_out_error": pixel_error, "data": [source.source, target.source],
                "reference": ctx.reference, "seed": ctx.seed, "ema": ctx.protocol.get("ema"), "run": ctx.protocol.get("run")}
    return [Score("a-distance", value, None, protocol)]


a_distance.uses_fake = False  # `evaluate` draws no samples for it

"""The registered metrics: each reads an `EvalContext` and returns protocol-tagged `Score`s.

Names carry the feature network: `fid-fmnist` is the Fréchet distance in genzoo's Fashion-MNIST
features, `fid-inception` the usual Inception FID. They are never comparable with each other.
"""

from __future__ import annotations

import math

import torch

from genzoo.metrics.context import EvalContext, Score
from genzoo.metrics.functional import (
    check_fid_sample_count,
    class_variety,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    mse_psnr,
)
from genzoo.metrics.manifold import density_coverage, precision_recall
from genzoo.models.base import CanReconstruct
from genzoo.errors import GenzooError
from genzoo.registry import METRICS


def _score(ctx: EvalContext, metric: str, value: float, std: float | None = None, **protocol) -> Score:
    name = f"{metric}-{ctx.network.name}"
    return Score(name, float(value), None if std is None else float(std), {"metric": name, **ctx.protocol, **protocol})


@METRICS.register("fid")
def fid(ctx: EvalContext) -> list[Score]:
    """Fréchet distance between Gaussians fitted to real and fake features (Heusel et al. 2017)."""
    check_fid_sample_count(min(ctx.num_real, ctx.num_fake), ctx.network.feature_dim)
    real, fake = ctx.real.moments, ctx.fake.moments
    return [_score(ctx, "fid", frechet_distance(real.mean, real.covariance, fake.mean, fake.covariance))]


@METRICS.register("kid")
def kid(ctx: EvalContext) -> list[Score]:
    """Unbiased MMD^2 with a cubic polynomial kernel over 100 subsets (Binkowski et al. 2018)."""
    subset_size = min(1000, ctx.num_real, ctx.num_fake)
    generator = torch.Generator().manual_seed(ctx.seed)
    if subset_size == ctx.num_real == ctx.num_fake:  # every subset would be both whole sets: no spread to report
        mean, _ = kernel_inception_distance(ctx.real.features, ctx.fake.features, num_subsets=1,
                                            subset_size=subset_size, generator=generator)
        return [_score(ctx, "kid", mean, None, subsets=1, subset_size=subset_size,
                       note=f"one subset: with {subset_size} images per side every subset is the whole set, so there "
                            "is no standard deviation; give more than 1000 images per side for one")]
    mean, std = kernel_inception_distance(ctx.real.features, ctx.fake.features, num_subsets=100,
                                          subset_size=subset_size, generator=generator)
    return [_score(ctx, "kid", mean, std, subsets=100, subset_size=subset_size)]


@METRICS.register("is")
def inception_score_metric(ctx: EvalContext) -> list[Score]:
    """exp E_x KL(p(y|x) || p(y)) over 10 splits (Salimans et al. 2016)."""
    mean, std = inception_score(logits=ctx.fake.logits, splits=10)
    return [_score(ctx, "is", mean, std, splits=10)]


@METRICS.register("pr")
def precision_recall_metric(ctx: EvalContext) -> list[Score]:
    """Improved precision (fakes on the real manifold) and recall (reals on the fake one), k = 3."""
    result = precision_recall(ctx.real.features, ctx.fake.features, k=3)
    return [_score(ctx, "precision", result["precision"], k=3), _score(ctx, "recall", result["recall"], k=3)]


@METRICS.register("dc")
def density_coverage_metric(ctx: EvalContext) -> list[Score]:
    """Density and coverage (Naeem et al. 2020), k = 5."""
    result = density_coverage(ctx.real.features, ctx.fake.features, k=5)
    return [_score(ctx, "density", result["density"], k=5), _score(ctx, "coverage", result["coverage"], k=5)]


@METRICS.register("variety")
def variety(ctx: EvalContext) -> list[Score]:
    """Mode-collapse detector: classes seen in the fakes, KL of their class histogram to the data's.

    The feature network classifies each fake; `classes` counts the classes that hold at least 10% of
    the uniform share, and `class-kl` is KL(p_fake || p_real) over the class histograms."""
    real = ctx.real.labels if ctx.real.labels is not None else ctx.real.logits.softmax(1)
    result = class_variety(ctx.fake.logits.double().softmax(1), real, ctx.network.num_classes)
    return [_score(ctx, "classes", result["classes_above_share"], of=ctx.network.num_classes,
                   min_share="10% of 1/C", histogram=result["histogram"]),
            _score(ctx, "class-kl", result["kl"])]


@METRICS.register("recon")
def reconstruction(ctx: EvalContext) -> list[Score]:
    """MSE (images in [0, 1]) and PSNR of reconstructions of the real images, for families that reconstruct."""
    if not isinstance(ctx.model, CanReconstruct):
        raise GenzooError("the recon metric needs a model that reconstructs (autoencoder, vae); drop it from --metrics.")
    total, count = {"mse": 0.0}, 0
    for batch in ctx.real_dict_batches():
        images = batch["image"]
        labels = {"labels": batch["label"]} if getattr(ctx.model, "conditional", False) and "label" in batch else {}
        result = mse_psnr(images, ctx.model.reconstruct(images, **labels))
        total["mse"] += result["mse"] * len(images)
        count += len(images)
    mse = total["mse"] / count
    psnr = float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse, dtype=torch.float64)).item()
    protocol = {"metric": "recon", "n_real": count, "reference": ctx.reference, "range": "images mapped to [0, 1]"}
    return [Score("mse", mse, None, {**protocol, "metric": "mse"}), Score("psnr", psnr, None, {**protocol, "metric": "psnr"})]


@METRICS.register("label-accuracy")
def label_accuracy(ctx: EvalContext) -> list[Score]:
    """Share of a conditional model's samples that the feature network classifies as the class asked for."""
    model = ctx.model
    if not getattr(model, "conditional", False):
        raise GenzooError("label-accuracy needs a class-conditional model (e.g. the cgan or acgan presets); drop it from --metrics.")
    if model.num_classes != ctx.network.num_classes:
        raise GenzooError(f"the model has {model.num_classes} classes but the {ctx.network.name} feature network "
                          f"{ctx.network.num_classes}; label-accuracy needs the same classes.")
    generator = torch.Generator(device=model.device).manual_seed(ctx.seed)
    correct = 0
    for start in range(0, ctx.num_fake, ctx.batch_size):
        labels = torch.arange(start, min(start + ctx.batch_size, ctx.num_fake), device=model.device) % model.num_classes
        images = model.generate(len(labels), labels=labels, generator=generator)
        predicted = ctx.network(images.to(ctx.device))["logits"].argmax(1)
        correct += (predicted.cpu() == labels.cpu()).sum().item()
    return [_score(ctx, "label-accuracy", correct / ctx.num_fake, labels="every class in turn")]


@METRICS.register("nll")
@METRICS.register("elbo")
def negative_log_likelihood(ctx: EvalContext) -> list[Score]:
    """Negative log-likelihood of the real data (exact, or the negative ELBO bound), nats per item and bits per dimension."""
    model = ctx.model
    if not callable(getattr(model, "nll", None)):
        raise GenzooError("the nll/elbo metric needs a model with a likelihood (vae, or an autoregressive model); "
                          "drop it from --metrics.")
    likelihood = model.likelihood
    generator = torch.Generator(device=model.device).manual_seed(ctx.seed)  # posterior samples, reproducible
    total, count = 0.0, 0
    for batch in ctx.real_dict_batches():
        values = model.nll(batch, generator=generator)  # (B,) nats per item
        total += values.double().sum().item()
        count += len(values)
    name = "nll" if likelihood.exact else "elbo"
    protocol = {"metric": name, "n_real": count, "reference": ctx.reference,
                "estimate": "exact" if likelihood.exact else "negative ELBO (an upper bound on the NLL), one posterior "
                "sample per item", "units": f"nats per {likelihood.item}", "seed": ctx.seed}
    scores = [Score(name, total / count, None, protocol)]
    if likelihood.offset is not None:  # (NLL / D + offset) / log 2: bits per dimension (per 8-bit value, per character)
        bits = (total / count / likelihood.dims + likelihood.offset) / math.log(2)
        unit = f"bits/{likelihood.dim_name}"
        scores.append(Score(unit, bits, None, {**protocol, "metric": unit, "units": f"bits per {likelihood.dim_name}"
                                                + (", dequantised 8-bit data" if likelihood.offset else "")}))
    return scores

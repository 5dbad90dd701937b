"""Accuracy of a classifier run on its data: clean, and robust under a fixed PGD attack.

`genzoo eval RUN --metrics accuracy,robust-accuracy --split test` scores a `classifier` run (any
model with `predict`) on the real images of its dataset. The robust accuracy is the share still
classified correctly after PGD-20 (L-inf, eps = 0.1 in [0, 1] pixel units, step 2.5 eps / 20, one
random start; Madry et al. 2018) computed through the model's differentiable `logits`; `genzoo attack`
gives the whole accuracy-versus-eps curve and other attacks.
"""

from __future__ import annotations

import torch

from genzoo.errors import GenzooError
from genzoo.metrics.context import EvalContext, Score
from genzoo.registry import METRICS

ROBUST = {"method": "pgd", "norm": "linf", "eps": 0.1, "steps": 20, "restarts": 1}


def _classifier(ctx: EvalContext, metric: str):  # noqa: ANN202
    model = ctx.model
    if not callable(getattr(model, "predict", None)):
        raise GenzooError(f"the {metric} metric needs a model that classifies (a classifier run); drop it from --metrics.")
    return model


def _protocol(ctx: EvalContext, metric: str, count: int, **extra: object) -> dict:
    return {"metric": metric, "n_real": count, "reference": ctx.reference, "seed": ctx.seed, "ema": ctx.protocol.get("ema"),
            "run": ctx.protocol.get("run"), **extra}


def _no_fakes(function):  # noqa: ANN001, ANN202
    function.uses_fake = False  # `evaluate` draws no samples for it
    return function


@METRICS.register("accuracy")
@_no_fakes
def accuracy(ctx: EvalContext) -> list[Score]:
    """Share of the reference images a classifier labels correctly (use --split test); source and target
    accuracy for domain adaptation (data.target)."""
    model = _classifier(ctx, "accuracy")
    if callable(getattr(ctx.real_data, "target_dataset", None)):  # source/target data: score each side
        return [_accuracy_of(ctx, model, data, name) for data, name in
                ((ctx.real_data.source_data, "source-accuracy"), (ctx.real_data.target_dataset(), "target-accuracy"))]
    correct, count = 0, 0
    for batch in ctx.real_dict_batches():
        if "label" not in batch:
            raise GenzooError("the accuracy metric needs labelled data, and this dataset has no labels.")
        correct += (model.predict(batch["image"]).argmax(1) == batch["label"]).sum().item()
        count += len(batch["label"])
    return [Score("accuracy", correct / count, None, _protocol(ctx, "accuracy", count))]


def _accuracy_of(ctx: EvalContext, model, data, name: str) -> Score:  # noqa: ANN001
    """Accuracy on the first min(len(data), n_real) images of one side of source/target data."""
    if data.labels is None:
        raise GenzooError(f"the accuracy metric needs labels on both sides, and {data.source} has none; "
                          "drop accuracy from --metrics or use a labelled target.")
    count = min(len(data), ctx.num_real)
    correct = 0
    for start in range(0, count, ctx.batch_size):
        batch = data.batch(torch.arange(start, min(start + ctx.batch_size, count)))
        correct += (model.predict(batch["image"].to(ctx.device)).argmax(1).cpu() == batch["label"].cpu()).sum().item()
    return Score(name, correct / count, None, _protocol(ctx, name, count, data=data.source))


@METRICS.register("robust-accuracy")
@_no_fakes
def robust_accuracy(ctx: EvalContext) -> list[Score]:
    """Accuracy under PGD-20, L-inf, eps = 0.1 (pixel units in [0, 1]); `genzoo attack` for more."""
    from genzoo.attacks import attack

    model = _classifier(ctx, "robust-accuracy")
    logits = getattr(model, "logits", None)
    if not callable(logits):
        raise GenzooError("the robust-accuracy metric needs a differentiable logits(x) method (a classifier run).")
    generator = torch.Generator(device=ctx.device).manual_seed(ctx.seed)
    correct, count = 0, 0
    for batch in ctx.real_dict_batches():
        images, labels = batch["image"], batch["label"]
        adversarial = attack(logits, images, labels, ROBUST["method"], ROBUST["eps"], norm=ROBUST["norm"],
                             steps=ROBUST["steps"], restarts=ROBUST["restarts"], generator=generator, module=model)
        correct += (model.predict(adversarial).argmax(1) == labels).sum().item()
        count += len(labels)
    return [Score("robust-accuracy", correct / count, None, _protocol(ctx, "robust-accuracy", count, attack=ROBUST,
                                                                      eps_units="[0, 1] pixel range"))]

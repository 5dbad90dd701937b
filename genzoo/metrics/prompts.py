"""Prompt accuracy: does a text-to-image model's image obey its prompt? The verifiable counterpart of a CLIP score.

Prompts are drawn from the captioned dataset's grammar (`genzoo.data.captions.Grammar`): of the caption
distribution ("seen"), and, where the dataset holds combinations out of training (shapes: red triangles,
green squares, blue circles), with one of them in every prompt ("held-out"). The model draws one image
per prompt, and the grammar measures each attribute back from the pixels (shapes: the number of objects,
their colour, shape and size, their relation; Fashion-MNIST captions: tone and width, and the class by
the shipped `fmnist` classifier). A score is the share of images right in one attribute (over the
prompts it applies to: a relation needs two shapes), or in all at once (`prompt-accuracy-*`). The real
images scored against their own captions give each score's ceiling (1.0 on shapes; for the class of
Fashion-MNIST, the classifier's accuracy).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch import Tensor

from genzoo.errors import GenzooError
from genzoo.metrics.context import EvalContext, Score
from genzoo.metrics.features import FeatureNetwork, load_features
from genzoo.registry import METRICS


def accepts_prompts(model: Any) -> bool:
    """Whether a model is text-conditional: its `generate` takes `prompts`."""
    generate = getattr(model, "generate", None)
    return callable(generate) and "prompts" in inspect.signature(generate).parameters


def classifier(network: FeatureNetwork) -> Callable[[Tensor], Tensor]:
    """Images (B, C, H, W) in [-1, 1] -> the feature network's class indices (B,)."""
    device = next(network.network.parameters()).device
    return lambda images: network(images.to(device))["logits"].argmax(1).cpu()


def prompt_accuracy(model: Any, grammar: Any, n: int, held_out: bool = False, seed: int = 0, batch_size: int = 250,
                    classify: Callable[[Tensor], Tensor] | None = None, **options: Any) -> dict[str, float]:
    """Share of n images right per attribute and in all, for n prompts of the grammar (`held_out`: each with a
    held-out combination); `options` go to `model.generate` (guidance, steps, ...)."""
    if not accepts_prompts(model):
        raise GenzooError(f"prompt accuracy needs a text-to-image model (latent-diffusion, gan-cls); a "
                          f"{type(model).__name__} takes no prompts.")
    prompts = grammar.prompts(n, held_out, torch.Generator().manual_seed(seed))
    generator = torch.Generator(device=model.device).manual_seed(seed)
    judged: dict[str, list[Tensor]] = {}
    for start in range(0, n, batch_size):
        part = prompts[start : start + batch_size]
        images = model.generate(len(part), prompts=part, generator=generator, **options)  # (b, C, H, W)
        for name, values in grammar.judge(images.float().cpu(), part, classify).items():
            judged.setdefault(name, []).append(values.float())
    return {name: float(torch.cat(values).nanmean()) for name, values in judged.items()}


@METRICS.register("prompt-accuracy")
def prompt_accuracy_metric(ctx: EvalContext) -> list[Score]:
    """Share of samples whose measured attributes match their prompt, per attribute and all, on seen and held-out prompts."""
    grammar = getattr(ctx.real_data, "grammar", None)
    if grammar is None:
        raise GenzooError("prompt-accuracy needs a captioned dataset (shapes, fashion-mnist-captions) to draw prompts from; "
                          "drop it from --metrics or evaluate a text-to-image run.")
    network = ctx.network if ctx.network.name == "fmnist" else load_features("fmnist")
    classify = classifier(network) if "class" in grammar.attributes else None
    scores = []
    for split in ("seen", "held-out") if grammar.held_out else ("seen",):
        values = prompt_accuracy(ctx.model, grammar, ctx.num_fake, split == "held-out", ctx.seed, ctx.batch_size, classify)
        protocol = {"n_prompts": ctx.num_fake, "prompts": split, "grammar": grammar.name, "held_out": list(grammar.held_out),
                    "measured": "on the pixels" + (f", class by the fmnist classifier (sha256 {network.weights_sha256})"
                                                   if classify else ""),
                    "ema": ctx.protocol.get("ema"), "sampler": ctx.protocol.get("sampler"), "seed": ctx.seed}
        for attribute, value in values.items():
            name = f"prompt-{'accuracy' if attribute == 'all' else attribute}-{split}"
            scores.append(Score(name, value, None, {"metric": name, **protocol}))
    return scores

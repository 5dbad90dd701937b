"""Images from any model for the sample-quality metrics, and the metrics of translation models.

`image_source` is the one place that knows how to get images from a model: a model that generates
gives new samples, scored against its data; a model that translates (pix2pix, CycleGAN, StarGAN, the
swap autoencoder) gives translations of real images, scored against the real images of the domain they
were translated to:
- two domains (batch keys a and b, paired or not): translate(a, to="b") against the images of b (or
  the other way with to="a"); the protocol says "translated from domain a";
- classes as domains (StarGAN): each image translated to another class drawn at random, against all
  the images, whose classes the translations should cover in the same proportions.
So FID, KID, precision/recall and the rest work unchanged on translation runs. The metrics here add
what translation papers claim:
- `cycle`: the cycle-consistency error of Zhu et al. (2017), Eq. 2: mean |F(G(a)) - a| and
  |G(F(b)) - b| (images mapped to [0, 1]); for StarGAN, |G(G(x, c), c') - x| (Choi et al. 2018, Eq. 4);
- `domain-accuracy`: the share of translations the feature network classifies as the target domain's
  class (StarGAN's classification error, Sec. 5: 1 - this), for domains that are its classes (two
  Fashion-MNIST classes as domains, or Fashion-MNIST classes as StarGAN domains, with `fmnist`).
The per-pair metrics of paired data (L1, PSNR, SSIM against each target) are in `genzoo.metrics.paired`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from genzoo.data.base import ImageData
from genzoo.errors import GenzooError
from genzoo.metrics.context import EvalContext, Score, model_batches
from genzoo.models.base import CanGenerate, CanTranslate
from genzoo.registry import METRICS


@dataclass
class ImageSource:
    real: Any  # the reference images the model's images are compared with (batches with "image")
    batches: Callable[[], Iterator[Tensor]]  # the model's images (B, C, H, W) in [-1, 1], reproducibly
    count: int  # how many images `batches` yields
    protocol: dict[str, Any] = field(default_factory=dict)  # what the images are, for every score


class DomainImages(ImageData):
    """One domain of a two-domain or paired dataset as plain images: the reference of translations into it.
    `dataset` is the two-domain dataset it comes from (for the per-pair and cycle metrics)."""

    def __init__(self, dataset: Any, side: str) -> None:
        images = domain_tensor(dataset, side)
        name = _domain_name(dataset, side)
        super().__init__(images, None, None, source=f"{dataset.source}: domain {side} ({name!r}, {len(images)} images)",
                         notes=list(dataset.notes))
        self.dataset, self.side = dataset, side


def domain_tensor(dataset: Any, side: str) -> Tensor:
    """The uint8 images (N, C, H, W) of domain `side` ("a" or "b") of a two-domain (`DomainData`) or paired dataset."""
    if side == "b":
        return dataset.images_b
    return dataset.images_a if hasattr(dataset, "images_a") else dataset.images


def _domain_name(dataset: Any, side: str) -> str:
    names = dataset.info.domains or ("a", "b")
    return str(names["ab".index(side)])


def translates(model: Any) -> bool:
    """Whether a model's images come from translating real images (it translates and does not generate)."""
    return isinstance(model, CanTranslate) and not isinstance(model, CanGenerate)


def image_source(model: Any, data: Any, n: int, batch_size: int, seed: int, to: str = "b") -> ImageSource:
    """n images of `model` (new samples, or translations of `data`'s images) and the real images they are
    compared with; for two domains, translations from the other domain into `to` ("a" or "b")."""
    if not translates(model):
        return ImageSource(data, model_batches(model, n, batch_size, seed), n)
    keys = set(data.keys)
    if {"a", "b"} <= keys:
        source = "a" if to == "b" else "b"
        inputs = domain_tensor(data, source)
        order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))[: min(n, len(inputs))]
        protocol = {"fake": f"translated from domain {source} ({_domain_name(data, source)!r}) to {to} "
                            f"({_domain_name(data, to)!r}), {len(order)} of its {len(inputs)} images",
                    "translation": f"{source}->{to}"}

        def batches() -> Iterator[Tensor]:
            for chunk in order.split(batch_size):
                x = inputs[chunk.to(inputs.device)].to(model.device).float() / 127.5 - 1.0  # uint8 -> [-1, 1]
                yield model.translate(x, to=to)

        return ImageSource(DomainImages(data, to), batches, len(order), protocol)
    if {"image", "label"} <= keys and getattr(model, "num_classes", 0) >= 2:
        inputs, targets = random_other_domains(data, n, model.num_classes, seed)
        protocol = {"fake": f"{len(inputs)} real images each translated to another domain drawn at random",
                    "translation": "to a random other domain"}

        def batches() -> Iterator[Tensor]:
            for chunk, target in zip(inputs.split(batch_size), targets.split(batch_size)):
                x = data.batch(chunk.to(data.device))["image"].to(model.device)
                yield model.translate(x, to=target.to(model.device))

        return ImageSource(data, batches, len(inputs), protocol)
    raise GenzooError(f"a {type(model).__name__} model translates images, but its data has neither two domains (a, b) "
                      "nor classes to translate between; evaluate it on the data it was trained on.")


def random_other_domains(data: Any, n: int, num_domains: int, seed: int) -> tuple[Tensor, Tensor]:
    """n image indices of a labelled dataset (a seeded permutation) and a target domain for each, drawn
    uniformly among the other K - 1 classes: (n,), (n,) int64."""
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randperm(len(data), generator=generator)[: min(n, len(data))]
    labels = data.labels[indices.to(data.labels.device)].cpu()  # (n,)
    shift = torch.randint(1, num_domains, (len(indices),), generator=generator)  # (n,) in [1, K - 1]
    return indices, (labels + shift) % num_domains


def two_domain_data(ctx: EvalContext) -> Any:
    """The evaluation's two-domain (or paired) dataset, or None for other data."""
    data = getattr(ctx.real_data, "dataset", ctx.real_data)
    return data if {"a", "b"} <= set(data.keys) else None


def side_batches(data: Any, side: str, n: int, batch_size: int, seed: int, device: torch.device) -> Iterator[Tensor]:
    """The first n images of a seeded permutation of domain `side`, in [-1, 1], in batches."""
    images = domain_tensor(data, side)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[: min(n, len(images))]
    for chunk in order.split(batch_size):
        yield images[chunk.to(images.device)].to(device).float() / 127.5 - 1.0


def _translator(ctx: EvalContext, metric: str) -> Any:
    if not isinstance(ctx.model, CanTranslate):
        raise GenzooError(f"the {metric} metric needs a model that translates images (pix2pix, cyclegan, stargan, swap); "
                          "drop it from --metrics.")
    return ctx.model


# ----------------------------------------------------------------------------- cycle consistency

@METRICS.register("cycle")
def cycle(ctx: EvalContext) -> list[Score]:
    """Cycle-consistency error: mean |F(G(a)) - a| and |G(F(b)) - b| on [0, 1] (StarGAN: back to the own class)."""
    model = _translator(ctx, "cycle")
    data, scores = two_domain_data(ctx), []
    protocol = {**ctx.protocol, "range": "images mapped to [0, 1]", "distance": "mean absolute error per pixel"}
    if data is not None:
        for source, other in (("a", "b"), ("b", "a")):
            total, count = 0.0, 0
            for x in side_batches(data, source, ctx.num_fake, ctx.batch_size, ctx.seed, model.device):
                try:
                    back = model.translate(model.translate(x, to=other), to=source)  # (B, C, H, W)
                except GenzooError:
                    raise GenzooError("the cycle metric needs a model that translates both ways (cyclegan, stargan, swap), "
                                      f"which this {type(model).__name__} does not; drop it from --metrics.") from None
                total += ((back - x) / 2).abs().double().flatten(1).mean(1).sum().item()
                count += len(x)
            name = f"cycle-l1-{source}"
            scores.append(Score(name, total / count, None, {**protocol, "metric": name, "n_fake": count,
                                                           "cycle": f"{source} -> {other} -> {source}"}))
        return scores
    inputs, targets = random_other_domains(ctx.real_data, ctx.num_fake, model.num_classes, ctx.seed)
    total = 0.0
    for chunk, target in zip(inputs.split(ctx.batch_size), targets.split(ctx.batch_size)):
        batch = ctx.real_data.batch(chunk.to(ctx.real_data.device))
        x, own = batch["image"].to(model.device), batch["label"].to(model.device)
        back = model.translate(model.translate(x, to=target.to(model.device)), to=own)
        total += ((back - x) / 2).abs().double().flatten(1).mean(1).sum().item()
    return [Score("cycle-l1", total / len(inputs), None, {**protocol, "metric": "cycle-l1", "n_fake": len(inputs),
                                                          "cycle": "own domain -> a random other -> own domain"})]


# ----------------------------------------------------------------------------- target-class accuracy

def feature_classes(network_name: str) -> tuple[str, ...]:
    """The class names of a feature network, in its output order (only `fmnist` has classes that domains can be)."""
    if network_name == "fmnist":
        from genzoo.data.fashion_mnist import CLASSES

        return CLASSES
    return ()


def _class_of(ctx: EvalContext, domain: str) -> int:
    classes = [name.lower() for name in feature_classes(ctx.network.name)]
    if str(domain).lower() not in classes:
        known = ", ".join(feature_classes(ctx.network.name)) or "none"
        raise GenzooError(f"domain-accuracy needs domains that are classes of the {ctx.network.name} feature network "
                          f"({known}), and {domain!r} is not; drop it from --metrics.")
    return classes.index(str(domain).lower())


@METRICS.register("domain-accuracy")
def domain_accuracy(ctx: EvalContext) -> list[Score]:
    """Share of translations the feature network classifies as the target domain's class (1 - StarGAN's classification error)."""
    model = _translator(ctx, "domain-accuracy")
    data = two_domain_data(ctx)
    name = f"domain-accuracy-{ctx.network.name}"
    scores = []
    if data is not None:
        names = data.info.domains or ("a", "b")
        for source, target in (("a", "b"), ("b", "a")):
            wanted = _class_of(ctx, names["ab".index(target)])
            correct, count = 0, 0
            try:
                for x in side_batches(data, source, ctx.num_fake, ctx.batch_size, ctx.seed, model.device):
                    predicted = ctx.network(model.translate(x, to=target).to(ctx.device))["logits"].argmax(1)
                    correct += int((predicted == wanted).sum())
                    count += len(x)
            except GenzooError:
                if target == "a":  # a model that translates one way only (pix2pix)
                    break
                raise
            scores.append(Score(f"{name}-{target}", correct / count, None, {
                **ctx.protocol, "metric": f"{name}-{target}", "n_fake": count,
                "translation": f"{source}->{target}", "target_class": names["ab".index(target)]}))
        return scores
    class_names = model.info.class_names or ()
    if len(class_names) != model.num_classes:
        raise GenzooError("domain-accuracy needs named classes as domains; drop it from --metrics.")
    wanted = torch.tensor([_class_of(ctx, domain) for domain in class_names])  # model domain -> feature class
    inputs, targets = random_other_domains(ctx.real_data, ctx.num_fake, model.num_classes, ctx.seed)
    correct = 0
    for chunk, target in zip(inputs.split(ctx.batch_size), targets.split(ctx.batch_size)):
        x = ctx.real_data.batch(chunk.to(ctx.real_data.device))["image"].to(model.device)
        predicted = ctx.network(model.translate(x, to=target.to(model.device)).to(ctx.device))["logits"].argmax(1)
        correct += int((predicted.cpu() == wanted[target]).sum())
    return [Score(name, correct / len(inputs), None, {**ctx.protocol, "metric": name, "n_fake": len(inputs),
                                                      "translation": "to a random other domain"})]

"""Latent-space tools: interpolation, traversal and class arithmetic, for any model with a latent space.

- Interpolation: a row of images decoded along a path between two random codes, linear (`lerp`) or
  spherical (`slerp`). White, "Sampling Generative Networks" (2016), Sec. 2.1: with a Gaussian prior
  in many dimensions almost all mass lies near a sphere of radius sqrt(D), and the midpoint of a
  straight line between two codes falls well inside it (norm about sqrt(D / 2)), where the model saw
  no codes during training; the great-circle path of slerp stays at the typical norm.
- Traversal: one row per latent dimension, that dimension swept from -range to +range with the
  others fixed (the beta-VAE pictures of Higgins et al. 2017).
- Arithmetic: Radford et al., "Unsupervised Representation Learning with Deep Convolutional GANs"
  (DCGAN, 2016), Sec. 6.3 and Fig. 7: the mean code of "man with glasses" minus that of "man" plus
  that of "woman" decodes to a woman with glasses; averaging the codes of several samples of a
  concept makes the arithmetic stable where single codes are not. The paper picked three exemplars
  of each concept by hand. genzoo picks by label instead: a model that encodes averages the codes of
  real images per label (or, without labels, per class the classifier predicts for them); a GAN,
  which has no encoder, labels its own samples with a classifier (the shipped `fmnist` feature
  network) and averages, like the paper, three codes per class: those the classifier is most sure
  of (the mean of hundreds of prior codes lies near the origin, where the generator draws a faint
  average image; see `class_mean_latents`). A conditional GAN is told its class, so
  its classes are its labels; its z is drawn independently of the label, so the per-class means of z
  all tend to the prior mean as the number of samples grows: the arithmetic still runs on z, decoded
  with a fixed label, and shows how little class information z holds (change the label to change
  the class).

Which models have a latent space, and how to sample and decode it, is decided in one place:
`latent_space(model)` and the `LATENT_SPACES` table; a style-based generator also has the space W of its
mapped codes (`STYLE_SPACE`, `space="w"`; its own tools are in `genzoo.style_space`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from rich.progress import track
from torch import Tensor, nn

from genzoo.errors import GenzooError

PAPER_EXEMPLARS = 3  # codes averaged per concept in Radford et al. 2016, Fig. 7
Classifier = Callable[[Tensor], dict[str, Tensor]]  # images (B, C, H, W) in [-1, 1] -> {"logits": (B, K), ...}

# ----------------------------------------------------------------------------- paths between codes


def _as_steps(t: float | Sequence[float] | Tensor, like: Tensor) -> tuple[Tensor, bool]:
    """t as a (T,) tensor of like's dtype and device, and whether t was a scalar."""
    steps = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    return steps.reshape(-1), steps.dim() == 0


def lerp(z0: Tensor, z1: Tensor, t: float | Sequence[float] | Tensor) -> Tensor:
    """Linear interpolation (1 - t) z0 + t z1.

    z0, z1: (..., D) codes of the same shape; t: a number, or (T,) values in [0, 1].
    Returns z0's shape for a number t, else (T, ..., D): entry i is the point at t[i].
    """
    steps, scalar = _as_steps(t, z0)
    w = steps.view(-1, *([1] * z0.dim()))  # (T, 1, ..., 1)
    path = (1 - w) * z0 + w * z1  # (T, ..., D)
    return path[0] if scalar else path


def slerp(z0: Tensor, z1: Tensor, t: float | Sequence[float] | Tensor, eps: float = 1e-6) -> Tensor:
    """Spherical linear interpolation (White 2016, "Sampling Generative Networks", Sec. 2.1):

        slerp(z0, z1; t) = sin((1 - t) w) / sin(w) z0 + sin(t w) / sin(w) z1,   cos(w) = <z0, z1> / (|z0| |z1|)

    It follows the great circle between the directions of z0 and z1 (the norm is interpolated along
    with it when the norms differ). When z0 and z1 are parallel or antiparallel (sin w ~ 0) the
    great circle is undefined and this falls back to `lerp`.

    z0, z1: (..., D), each code along the last dimension; t: a number, or (T,) values in [0, 1].
    Returns z0's shape for a number t, else (T, ..., D).
    """
    steps, scalar = _as_steps(t, z0)
    norms = z0.norm(dim=-1, keepdim=True) * z1.norm(dim=-1, keepdim=True)  # (..., 1)
    cos = (z0 * z1).sum(-1, keepdim=True) / norms.clamp_min(eps)  # (..., 1)
    omega = torch.arccos(cos.clamp(-1, 1))  # (..., 1), the angle between the codes
    sin = torch.sin(omega)  # (..., 1)
    w = steps.view(-1, *([1] * z0.dim()))  # (T, 1, ..., 1)
    degenerate = sin.abs() < eps  # (..., 1): (anti)parallel codes
    safe = torch.where(degenerate, torch.ones_like(sin), sin)
    spherical = (torch.sin((1 - w) * omega) * z0 + torch.sin(w * omega) * z1) / safe  # (T, ..., D)
    path = torch.where(degenerate, (1 - w) * z0 + w * z1, spherical)  # (T, ..., D)
    return path[0] if scalar else path


# ----------------------------------------------------------------------------- which models have a latent space


@dataclass(frozen=True)
class LatentSpace:
    """How to draw codes from a family's prior and how to turn codes back into images."""

    kind: str
    applies: Callable[[nn.Module], bool]
    sample: Callable[[Any, int, torch.Generator | None], Tensor]  # (model, n, generator) -> (n, D)
    decode: Callable[[Any, Tensor, Tensor | None], Tensor]  # (model, z (n, D), labels (n,) | None) -> (n, C, H, W)


# Checked in order; the first that applies is the model's latent space. A decoder alone is not enough:
# a plain autoencoder's codes have no prior to sample from, so it has no latent space to walk.
LATENT_SPACES: tuple[LatentSpace, ...] = (
    LatentSpace(
        "decoder with a prior",  # VAEs (N(0, I)), GLO (a Gaussian fitted to its learned codes), GANs (their z)
        applies=lambda model: hasattr(model, "decode_latent") and hasattr(model, "sample_latent"),
        sample=lambda model, n, generator: model.sample_latent(n, generator),
        decode=lambda model, z, labels: model.decode_latent(z, labels),
    ),
)


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def _mapped_codes(model: Any, n: int, generator: torch.Generator | None) -> Tensor:
    return model.map_latent(model.sample_latent(n, generator))  # w = f(z), (n, D)


# A style-based generator's intermediate latent space W (Karras et al. 2019, Sec. 2): codes w = f(z),
# walked in straight lines (W is not normalised, so slerp has no reason there; their PPL in W uses lerp).
STYLE_SPACE = LatentSpace(
    "intermediate latent w",
    applies=lambda model: hasattr(model, "map_latent") and hasattr(model, "decode_w"),
    sample=_mapped_codes,
    decode=lambda model, w, labels: model.decode_w(w),
)
SPACES = ("z", "w")  # the prior's codes, or a style-based generator's mapped codes


def latent_space(model: Any, space: str = "z") -> LatentSpace:
    """The model's entry of `LATENT_SPACES` (space "z") or `STYLE_SPACE` (space "w"); GenzooError when it has none."""
    if space not in SPACES:
        raise GenzooError(f"unknown latent space {space!r}; choose z (the prior's codes) or w (StyleGAN's mapped codes).")
    if space == "w":
        if STYLE_SPACE.applies(model):
            return STYLE_SPACE
        raise GenzooError(f"this {type(model).__name__} model has no intermediate latent space w (StyleGAN has one); "
                          "use --space z.")
    for entry in LATENT_SPACES:
        if entry.applies(model):
            return entry
    raise GenzooError(f"this {type(model).__name__} model has no latent space to walk (no prior to draw codes from); "
                      "use a run of a family that samples codes, such as vae or gan.")


def latent_codes(model: Any, n: int, generator: torch.Generator | None = None, space: str = "z") -> Tensor:
    """n random codes from the model's prior (or their images under its mapping network, space "w"), (n, D)."""
    return latent_space(model, space).sample(model, n, generator)


@torch.no_grad()
def decode(model: Any, z: Tensor, labels: Tensor | None = None, batch_size: int = 500, space: str = "z") -> Tensor:
    """Codes (n, D) -> images (n, C, H, W) in [-1, 1], in batches; labels (n,) for conditional models."""
    space = latent_space(model, space)
    was_training = model.training
    model.eval()
    try:
        chunks = [space.decode(model, z[i : i + batch_size], None if labels is None else labels[i : i + batch_size])
                  for i in range(0, len(z), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(chunks)


def _is_conditional(model: Any) -> bool:
    return bool(getattr(model, "conditional", False))


def _labels(model: Any, labels: Tensor | list[int] | int | None, n: int) -> Tensor | None:
    """None for an unconditional model; else (n,) class indices (a number is repeated n times)."""
    if not _is_conditional(model):
        return None
    if labels is None:
        labels = 0
    labels = torch.as_tensor(labels, device=_device(model)).long()
    return labels.expand(n).clone() if labels.dim() == 0 else labels


# ----------------------------------------------------------------------------- pictures


def interpolation_grid(model: Any, rows: int = 8, steps: int = 10, spherical: bool | None = None,
                       generator: torch.Generator | None = None, space: str = "z") -> Tensor:
    """(rows * steps, C, H, W): row r walks in `steps` equal steps of t from one random code to another,
    along a great circle (`slerp`) or a straight line (`lerp`); None: slerp in z, lerp in w. A conditional
    model keeps one label per row, class r mod K."""
    if rows < 1 or steps < 2:
        raise GenzooError(f"an interpolation needs at least 1 row and 2 steps, got {rows} rows and {steps} steps.")
    spherical = space == "z" if spherical is None else spherical
    start, end = latent_codes(model, rows, generator, space), latent_codes(model, rows, generator, space)  # (R, D) each
    t = torch.linspace(0, 1, steps, device=start.device)  # (S,)
    path = (slerp if spherical else lerp)(start, end, t)  # (S, R, D)
    z = path.transpose(0, 1).reshape(rows * steps, -1)  # (R * S, D), row-major
    labels = None
    if _is_conditional(model):
        labels = (torch.arange(rows, device=z.device) % model.num_classes).repeat_interleave(steps)  # (R * S,)
    return decode(model, z, labels, space=space)


def traversal(model: Any, dims: int = 8, steps: int = 9, span: float = 3.0, generator: torch.Generator | None = None,
              label: int = 0) -> tuple[Tensor, int]:
    """(rows * steps, C, H, W) and rows: row d is one random code with dimension d set to each of
    `steps` values from -span to +span, the others fixed (Higgins et al. 2017's latent traversals).
    rows = min(dims, D): the first `dims` dimensions. A conditional model uses `label` throughout."""
    if dims < 1 or steps < 2 or span <= 0:
        raise GenzooError(f"a traversal needs dims >= 1, steps >= 2 and a positive range, got {dims}, {steps}, {span}.")
    z0 = latent_codes(model, 1, generator)[0]  # (D,)
    rows = min(dims, z0.numel())
    values = torch.linspace(-span, span, steps, device=z0.device)  # (S,)
    z = z0.repeat(rows, steps, 1)  # (R, S, D)
    index = torch.arange(rows, device=z0.device)
    z[index, :, index] = values  # row d: dimension d swept
    z = z.reshape(rows * steps, -1)  # (R * S, D)
    return decode(model, z, _labels(model, label, len(z))), rows


# ----------------------------------------------------------------------------- class means and arithmetic


@dataclass
class ClassMeans:
    """The mean latent code of each class, and how it was formed."""

    means: Tensor  # (K, D); rows of classes with no samples are NaN
    counts: Tensor  # (K,) samples averaged into each mean
    available: Tensor  # (K,) samples of each class before the exemplars were picked (= counts without)
    names: tuple[str, ...]  # K class names
    source: str  # how codes got their classes, for messages

    def index(self, name_or_index: str | int) -> int:
        """The class of a name (case and punctuation ignored, unique prefixes allowed) or an index."""
        return resolve_class(name_or_index, self.names)


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def resolve_class(name_or_index: str | int, names: Sequence[str]) -> int:
    """Index of a class given by index ("3", 3) or name ("Trouser", "ankle boot", "t-shirt")."""
    text = str(name_or_index).strip()
    if re.fullmatch(r"\d+", text):
        if int(text) < len(names):
            return int(text)
        raise GenzooError(f"class index {text} is out of range; this model has classes 0 to {len(names) - 1}.")
    key = _normalise(text)
    exact = [i for i, name in enumerate(names) if _normalise(name) == key]
    prefix = [i for i, name in enumerate(names) if key and _normalise(name).startswith(key)]
    if exact or len(prefix) == 1:
        return (exact or prefix)[0]
    known = ", ".join(f"{i}={name}" for i, name in enumerate(names))
    raise GenzooError(f"unknown class {text!r}; give an index or a name of: {known}.")


def _class_names(k: int, classifier: Any = None) -> tuple[str, ...]:
    """Fashion-MNIST's names for the `fmnist` classifier's classes; indices otherwise."""
    from genzoo.data.fashion_mnist import CLASSES

    if getattr(classifier, "name", None) == "fmnist" and k == len(CLASSES):
        return CLASSES
    return tuple(str(i) for i in range(k))


@torch.no_grad()
def _classify(classifier: Classifier, images: Tensor, batch_size: int = 500) -> tuple[Tensor, Tensor, int]:
    """argmax of the classifier's logits (n,), its softmax probability (n,), and the number of classes."""
    logits = [classifier(images[i : i + batch_size])["logits"].float() for i in range(0, len(images), batch_size)]
    probabilities = torch.cat(logits).softmax(1)  # (n, K)
    confidence, labels = probabilities.max(1)
    return labels, confidence, probabilities.shape[1]


def _per_class_mean(codes: Tensor, labels: Tensor, k: int, score: Tensor | None = None,
                    exemplars: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """codes (n, D), labels (n,) in [0, K) -> means (K, D) (NaN where a class is empty), counts (K,)
    averaged, available (K,). With `exemplars` e, each class averages only its e codes of highest
    `score` (its first e without one)."""
    available = torch.bincount(labels, minlength=k)[:k]  # (K,)
    if exemplars:
        score = torch.zeros(len(labels), device=labels.device) if score is None else score.to(labels.device)
        order = torch.argsort(score, descending=True, stable=True)  # most confident first
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order), device=order.device)
        keep = torch.zeros(len(labels), dtype=torch.bool, device=labels.device)
        for c in labels.unique():
            members = (labels == c).nonzero().flatten()  # (m,)
            keep[members[rank[members].argsort()[:exemplars]]] = True
        codes, labels = codes[keep], labels[keep]
    codes = codes.double()
    counts = torch.bincount(labels, minlength=k)[:k]  # (K,)
    sums = torch.zeros(k, codes.shape[1], dtype=codes.dtype, device=codes.device)
    sums.index_add_(0, labels, codes)  # (K, D)
    means = sums / counts[:, None]  # empty class: 0/0 = NaN
    return means.float(), counts, available


@torch.no_grad()
def class_mean_latents(model: Any, num: int = 2000, generator: torch.Generator | None = None,
                       classifier: Classifier | None = None, data: Any = None,
                       names: Sequence[str] | None = None, check: Sequence[str | int] = (),
                       exemplars: int | Literal["auto"] | None = "auto") -> ClassMeans:
    """The mean latent code of each class, over `num` samples.

    - A model with `encode` and real `data` (an `ImageData`, or a pair (images, labels or None) with
      images uint8 or in [-1, 1]): `num` random real images are encoded and their codes averaged per
      label; images without labels are labelled by the classifier.
    - A conditional GAN: `num` codes, with labels cycling through the classes; the classes are the
      labels (z is independent of them, so every mean tends to the prior mean).
    - Otherwise (a GAN, or a VAE without data): `num` codes from the prior, decoded, and the images
      labelled by the classifier (argmax of its logits), as a stand-in for the DCGAN paper's
      hand-picked exemplars.

    classifier: images in [-1, 1] -> {"logits": (B, K)}; default: the `fmnist` feature network.
    names: class names; default: Fashion-MNIST's for the `fmnist` classifier's classes, else the
    indices (pass `genzoo.data.fashion_mnist.CLASSES` for labels of Fashion-MNIST data).
    check: classes (names or indices) that must exist, resolved before any sample is drawn.
    exemplars: average only this many codes per class: those the classifier is most sure of, or the
    first ones drawn where labels are given (the DCGAN paper averaged 3 hand-picked exemplars). None:
    every code of the class. "auto" (the default): 3 for codes drawn from the prior, all for encoded
    real images. Why: the mean of m codes drawn from N(0, I) has norm about sqrt(D / m), far inside
    the prior's typical shell of radius sqrt(D) (White 2016); a GAN decodes the mean of hundreds of
    codes as a faint average image near G(0), so the arithmetic shows nothing. Encoded real images
    are what a VAE's decoder is trained on, and their class means stay meaningful.
    """
    if num < 1:
        raise GenzooError(f"the class means need at least one sample, got num={num}.")
    if exemplars != "auto" and exemplars is not None and exemplars < 1:
        raise GenzooError(f"exemplars must be at least 1 (or None for all), got {exemplars}.")
    latent_space(model)  # fails early for a model without a latent space
    score = None  # the classifier's confidence in each code's class, when a classifier gave the classes
    encodes = data is not None and hasattr(model, "encode")
    data_labels = None
    if encodes:
        images, data_labels = (data.images, data.labels) if hasattr(data, "images") else data
    if encodes and data_labels is not None:  # classes: the data's labels
        k = int(getattr(data, "num_classes", None) or int(data_labels.max()) + 1)
    elif _is_conditional(model) and not encodes:  # classes: the model's labels
        k = model.num_classes
    else:  # classes: a classifier's predictions
        if classifier is None:
            from genzoo.metrics.features import load_features

            classifier = load_features("fmnist").to(_device(model))
        k = getattr(classifier, "num_classes", None)
    names = tuple(names) if names is not None else (None if k is None else _class_names(k, classifier))
    if names is not None:
        for name in check:
            resolve_class(name, names)

    if encodes:
        pick = torch.randperm(len(images), generator=generator)[:num]  # (n,)
        images = images[pick.to(images.device)]
        if images.dtype == torch.uint8:
            images = images.float() / 127.5 - 1.0  # the dataset boundary: uint8 -> [-1, 1]
        images = images.to(_device(model))
        codes = torch.cat([model.encode(chunk) for chunk in images.split(500)])  # (n, D)
        if data_labels is not None:
            labels = data_labels[pick.to(data_labels.device)].to(codes.device).long()  # (n,)
            source = f"{len(codes)} real images encoded, grouped by their labels"
        else:
            labels, score, width = _classify(classifier, images)  # (n,), (n,)
            source = f"{len(codes)} real images encoded, grouped by the classifier's predicted class"
    elif _is_conditional(model):
        codes = latent_codes(model, num, generator)  # (n, D)
        labels = torch.arange(num, device=codes.device) % k  # (n,)
        source = f"{num} codes of a conditional GAN, grouped by the label they were drawn with"
    else:
        codes = latent_codes(model, num, generator)  # (n, D)
        labels, score, width = _classify(classifier, decode(model, codes))  # (n,), (n,); both batch by themselves
        source = f"{num} generated images, grouped by the classifier's predicted class"
    if k is None:  # a classifier that does not say how many classes it has: its logits do
        k = width
        names = _class_names(k)
    labels = labels.to(codes.device)
    if exemplars == "auto":
        exemplars = None if encodes else PAPER_EXEMPLARS
    if exemplars is not None:
        source += f", the {exemplars} {'most confident' if score is not None else 'first'} of each class averaged"
    means, counts, available = _per_class_mean(codes, labels, k, score, exemplars)
    return ClassMeans(means, counts.cpu(), available.cpu(), names, source)


@torch.no_grad()
def arithmetic(model: Any, a: str | int, b: str | int, c: str | int, num: int = 2000,
               generator: torch.Generator | None = None, classifier: Classifier | None = None,
               data: Any = None, means: ClassMeans | None = None, variants: int = 8, noise: float = 0.25,
               label: int | None = None, names: Sequence[str] | None = None,
               exemplars: int | Literal["auto"] | None = "auto") -> Tensor:
    """Latent arithmetic on class means (Radford et al. 2016, Sec. 6.3, Fig. 7):

        y = mean[a] - mean[b] + mean[c]

    Returns (4 + variants, C, H, W): the images of mean[a], mean[b], mean[c], y, then y plus uniform
    noise in [-noise, noise] on each entry (the paper's 3 x 3 grids add noise of scale 0.25 around
    y); laid out 4 to a row, the first row reads a - b + c = y.

    Classes are indices or names (`resolve_class`). `means` reuses `class_mean_latents`' answer;
    otherwise it is computed here from num, generator, classifier, data, names and exemplars. A conditional model
    decodes mean[k] with label k and y and its variants with `label` (default: c's class).
    A class that got no samples is a GenzooError.
    """
    means = means or class_mean_latents(model, num, generator, classifier, data, names, (a, b, c), exemplars)
    ia, ib, ic = (means.index(x) for x in (a, b, c))
    for i in (ia, ib, ic):
        if means.counts[i] == 0:
            raise GenzooError(f"no sample fell in class {means.names[i]!r} ({means.source}); "
                              "draw more samples (num=..., or --samples N on the command line) or pick another class.")
    y = means.means[ia] - means.means[ib] + means.means[ic]  # (D,)
    jitter = (torch.rand(variants, y.numel(), generator=generator) * 2 - 1).to(y.device) * noise  # (V, D) uniform
    z = torch.cat([means.means[[ia, ib, ic]], y[None], y[None] + jitter])  # (4 + V, D)
    labels = None
    if _is_conditional(model):
        fixed = ic if label is None else label
        labels = torch.tensor([ia, ib, ic] + [fixed] * (1 + variants), device=z.device)
    return decode(model, z.to(_device(model)), labels)


__all__ = ["LATENT_SPACES", "SPACES", "STYLE_SPACE", "ClassMeans", "LatentSpace", "arithmetic", "class_mean_latents", "decode",
           "interpolation_grid", "latent_codes", "latent_space", "lerp", "resolve_class", "slerp", "traversal"]


# ----------------------------------------------------------------------------- encoding by optimisation


def optimise_codes(decode: Callable[[Tensor], Tensor], targets: Tensor, start: Tensor,
                   loss: Callable[[Tensor, Tensor], Tensor], steps: int, lr: float,
                   project: Callable[[Tensor], Tensor] | None = None, progress: bool = False,
                   description: str = "encoding by optimisation") -> tuple[Tensor, Tensor, Tensor]:
    """argmin_z loss(decode(z), x) for each target image, by Adam from R starting codes per image with
    the decoder frozen (GLO's inference, Bojanowski et al. 2018; GAN inversion, e.g. Creswell & Bharath
    2018). The problem is not convex: the best of the R final codes wins.

    targets (B, C, H, W); start (R, B, D) codes; loss(images, targets) -> (N,) per image; `project`
    maps codes back onto the prior's support after every step (e.g. GLO's unit sphere).
    Returns the codes (B, D), their final losses (B,) and the mean loss of every step (steps,).
    """
    restarts, count = start.shape[:2]
    repeated = targets.repeat(restarts, *[1] * (targets.dim() - 1))  # (R * B, ...): restart r of image i at r * B + i
    z = nn.Parameter(start.reshape(restarts * count, -1).clone())  # (R * B, D)
    optimizer = torch.optim.Adam([z], lr=lr)
    history = torch.zeros(steps, device=targets.device)  # read once at the end: no host sync per step
    with torch.enable_grad():
        for step in track(range(steps), description=description, disable=not progress, transient=True):
            per_image = loss(decode(z), repeated)  # (R * B,)
            optimizer.zero_grad(set_to_none=True)
            per_image.sum().backward()  # images are independent: the sum's gradient is each one's own
            optimizer.step()
            history[step] = per_image.detach().mean()
            if project is not None:
                with torch.no_grad():
                    z.copy_(project(z))
    with torch.no_grad():
        final = loss(decode(z), repeated).view(restarts, count)  # (R, B)
        best = final.argmin(0)  # (B,)
        index = torch.arange(count, device=targets.device)
        return z.detach().view(restarts, count, -1)[best, index], final[best, index], history

"""Adversarial examples: small input changes, found by gradient, that change a classifier's answer.

Every attack here takes `logits`, a differentiable function from images (B, C, H, W) in [-1, 1]
(genzoo's range) to class logits (B, K), and a radius `eps` given in **[0, 1] pixel units**, the
unit the literature uses (Madry et al.'s eps = 0.3 on MNIST means 0.3 of the pixel range). Since
genzoo's images span [-1, 1], the ball in image units has radius 2 eps. Normalisation belongs
inside `logits` (never outside it, where an attack would measure eps in the wrong units), and the
model must be in eval mode (batch norm and dropout fixed), which `attack` asserts.

The loss is the cross-entropy L(x, y) = -log softmax(f(x))_y. Untargeted attacks ascend it on the
true label y; targeted ones descend it on the target class t. With s = +1 (untargeted) or -1
(targeted), and Proj the projection onto {x' : ||x' - x|| <= eps} intersected with the box [-1, 1]:

- FGSM (Goodfellow, Shlens & Szegedy, ICLR 2015, Eq. 3):  x' = Proj(x + eps * sign(grad_x L))
  (L2: the fast gradient method, x + eps * g / ||g||_2);
- BIM (Kurakin, Goodfellow & Bengio, ICLR 2017 workshop, Sec. 2.1):  x^{t+1} = Proj(x^t + a * s * sign(grad L(x^t)))
  from x^0 = x;
- PGD (Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018,
  Eq. 2 and Sec. 3): the same iteration from a uniformly random point of the ball, with restarts;
  per example the strongest iterate over steps and restarts is kept (one that fools the model, else
  the one of highest loss), so more steps or restarts can never make the model look stronger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.errors import GenzooError

Logits = Callable[[Tensor], Tensor]
Norm = Literal["linf", "l2"]
METHODS = ("fgsm", "bim", "pgd")
LOW, HIGH = -1.0, 1.0  # genzoo's image range
UNIT = 2.0  # eps in [0, 1] pixel units -> image units


def check_eps(eps: float) -> None:
    if not eps >= 0:  # also NaN
        raise GenzooError(f"eps {eps} is negative; give a radius >= 0 in [0, 1] pixel units (e.g. 0.1).")


def project(x_adv: Tensor, x: Tensor, eps: float, norm: Norm) -> Tensor:
    """Proj: the nearest point of {||x' - x|| <= eps} (eps in [0, 1] pixel units), then clipped to [-1, 1].

    L-inf: x' clamped to [x - 2 eps, x + 2 eps] coordinate-wise (that is the projection of an L-inf
    ball). L2: delta scaled by min(1, 2 eps / ||delta||_2) per image. Clipping to the box afterwards
    moves each coordinate towards x, so it never leaves the ball. (B, C, H, W) -> (B, C, H, W)."""
    radius = UNIT * eps
    if norm == "linf":
        x_adv = torch.clamp(x_adv, x - radius, x + radius)
    else:
        delta = x_adv - x  # (B, C, H, W)
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))  # (B, 1, 1, 1)
        x_adv = x + delta * torch.clamp(radius / norms, max=1.0)
    return x_adv.clamp(LOW, HIGH)


def _direction(gradient: Tensor, norm: Norm) -> Tensor:
    """The steepest-ascent direction of unit norm: sign(g) for L-inf, g / ||g||_2 for L2."""
    if norm == "linf":
        return gradient.sign()
    norms = gradient.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (gradient.dim() - 1))
    return gradient / norms


def _loss_and_gradient(logits: Logits, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-example cross-entropy (B,), its gradient in x (B, C, H, W), and the logits (B, K)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = logits(x).float()  # (B, K)
        loss = F.cross_entropy(out, labels, reduction="none")  # (B,)
        (gradient,) = torch.autograd.grad(loss.sum(), x)  # examples are independent: each gets its own
    return loss.detach(), gradient, out.detach()


def _random_start(x: Tensor, eps: float, norm: Norm, generator: torch.Generator | None) -> Tensor:
    """A uniform point of the L-inf ball, or of the L2 ball (direction uniform on the sphere, radius
    r = R * U^(1/d), so that volume is uniform), clipped to the box."""
    radius = UNIT * eps
    if norm == "linf":
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1  # U[-1, 1]
        return (x + radius * noise).clamp(LOW, HIGH)
    direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    direction = _direction(direction, "l2")
    dims = x[0].numel()
    scale = torch.rand(len(x), generator=generator, device=x.device, dtype=x.dtype) ** (1.0 / dims)  # (B,)
    return (x + radius * scale.view(-1, *[1] * (x.dim() - 1)) * direction).clamp(LOW, HIGH)


def fgsm(logits: Logits, x: Tensor, labels: Tensor, eps: float, norm: Norm = "linf",
         target: Tensor | None = None) -> Tensor:
    """One step of size eps along the gradient's sign (L-inf) or direction (L2). Images (B, C, H, W)."""
    check_eps(eps)
    sign, goal = (1.0, labels) if target is None else (-1.0, target)
    _, gradient, _ = _loss_and_gradient(logits, x, goal)
    return project(x + sign * UNIT * eps * _direction(gradient, norm), x, eps, norm).detach()


def pgd(logits: Logits, x: Tensor, labels: Tensor, eps: float, steps: int = 40, step_size: float | None = None,
        norm: Norm = "linf", target: Tensor | None = None, random_start: bool = True, restarts: int = 1,
        keep_best: bool = True, generator: torch.Generator | None = None,
        on_step: Callable[[int, Tensor, Tensor], None] | None = None) -> Tensor:
    """Projected gradient descent on the loss (Madry et al. 2018); BIM is `random_start=False`.

    step_size: alpha in [0, 1] pixel units (default 2.5 eps / steps, Madry et al., Sec. 5 / App. C).
    keep_best: per example, the strongest of all iterates of all restarts (see the module's note);
    False returns the last iterate of the last restart, as most attack libraries do.
    on_step(step, loss (B,), logits (B, K)): called at every iterate of the first restart (for logs).
    Returns adversarial images (B, C, H, W) within the ball and the box."""
    check_eps(eps)
    if steps < 1 or restarts < 1:
        raise GenzooError(f"an iterative attack needs steps >= 1 and restarts >= 1 (got {steps} and {restarts}).")
    alpha = UNIT * (2.5 * eps / steps if step_size is None else step_size)
    sign, goal = (1.0, labels) if target is None else (-1.0, target)
    x = x.detach()
    best = x.clone()
    best_score = torch.full((len(x),), -float("inf"), device=x.device)  # higher: stronger for the attacker
    best_fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)

    def consider(candidate: Tensor, loss: Tensor, out: Tensor) -> None:
        fooled = out.argmax(1) != labels if target is None else out.argmax(1) == target  # (B,)
        score = sign * loss
        better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (score > best_score))
        best[better] = candidate[better]
        best_score[better], best_fooled[better] = score[better], fooled[better]

    x_adv = x
    for restart in range(restarts):
        x_adv = _random_start(x, eps, norm, generator) if random_start and eps > 0 else x.clone()
        for step in range(steps):
            loss, gradient, out = _loss_and_gradient(logits, x_adv, goal)
            if on_step is not None and restart == 0:
                on_step(step, loss, out)
            if keep_best:
                consider(x_adv, loss, out)  # the iterate whose logits were just computed
            x_adv = project(x_adv + sign * alpha * _direction(gradient, norm), x, eps, norm).detach()
        if keep_best:
            with torch.no_grad():
                out = logits(x_adv).float()
            consider(x_adv, F.cross_entropy(out, goal, reduction="none"), out)
    return best if keep_best else x_adv


def attack(logits: Logits, x: Tensor, labels: Tensor, method: str, eps: float, *, norm: Norm = "linf",
           steps: int = 40, step_size: float | None = None, restarts: int = 1, target: Tensor | None = None,
           generator: torch.Generator | None = None, module: torch.nn.Module | None = None,
           on_step: Callable[[int, Tensor, Tensor], None] | None = None) -> Tensor:
    """One of METHODS by name. `module`, when given, must be in eval mode (a model left in training
    mode would attack batch statistics and dropout masks that no test-time input sees)."""
    if module is not None and module.training:
        raise GenzooError("the model is in training mode; call .eval() before attacking it.")
    if method not in METHODS:
        raise GenzooError(f"unknown attack {method!r}; choose one of: {', '.join(METHODS)}.")
    if method == "fgsm":  # one step: no iteration settings
        return fgsm(logits, x, labels, eps, norm, target)
    return pgd(logits, x, labels, eps, steps, step_size, norm, target, random_start=method == "pgd",
               restarts=restarts if method == "pgd" else 1, generator=generator, on_step=on_step)


@torch.no_grad()
def accuracy(logits: Logits, x: Tensor, labels: Tensor) -> float:
    """Share of images (B, C, H, W) classified as their labels (B,)."""
    return (logits(x).argmax(1) == labels).float().mean().item()

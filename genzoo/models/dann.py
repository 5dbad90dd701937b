"""DANN: domain-adversarial training of neural networks (Ganin et al., "Domain-Adversarial Training of
Neural Networks", JMLR 17(59), 2016).

A classifier for a labelled *source* domain (e.g. simulation, MNIST) that must work on an unlabelled
*target* domain (detector data, MNIST-M). Three networks:
- a feature extractor G_f(x; theta_f) -> f (B, D);
- a label predictor G_y(f; theta_y) -> class logits, trained on the source's labels;
- a domain classifier G_d(f; theta_d) -> logit of "this came from the target", trained on both domains,
  behind a *gradient-reversal layer* R_lambda (Sec. 5.1, Eq. 20): R(x) = x forward, dR/dx = -lambda I
  backward, so that one ordinary gradient step on
      E = L_y(source) + L_d(source) + L_d(target)
  updates theta_d to tell the domains apart while theta_f climbs L_d: the saddle point of Eq. 18,
      E(theta_f, theta_y, theta_d) = 1/n sum_i L_y^i - lambda (1/n sum_i L_d^i + 1/n' sum_j L_d^j),
  minimised over theta_f, theta_y and maximised over theta_d, features that predict the labels and
  do not tell the domains apart.
Schedules (Sec. 5.2.2), pure functions of training progress p = step / total in [0, 1]:
    lambda_p = 2 / (1 + exp(-gamma p)) - 1,   gamma = 10   (from 0 to ~1: the domain classifier's
                                                             noisy start does not disturb the features)
    mu_p = mu_0 / (1 + alpha p)^beta,         alpha = 10, beta = 0.75  (a factor on train.lr)
and the paper's optimiser: SGD with momentum 0.9, mu_0 = 0.01, batches of 64 source + 64 target
images (preset `dann`). `model.grl_lambda=0` gives the *source-only* baseline with the same network and
schedule (the domain classifier still learns, but no gradient reaches the features); the *oracle* is the
same network trained on the target's labels (data.name = the target).

Networks: `features: lenet` is the paper's MNIST network (conv 5x5, 32 maps, ReLU, max-pool 2; conv
5x5, 48 maps, ReLU, max-pool 2; images of at least 16 px), label predictor 100-100-K and domain
classifier 100-1 (ReLU hidden layers); `features: dcgan` is the DCGAN discriminator stack (sizes b * 2^k).
`predict(x)` gives the label logits (B, K), `encode(x)` the features (B, D) (the report's picture of
source and target features). Batches: {"source", "source_label", "target"} (`data.target=NAME`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt
from torch import Tensor, nn

from genzoo.config import FamilyConfig
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, GenerativeModel, Scheduled
from genzoo.nn import DownConvStack
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class DANNConfig(FamilyConfig):
    features: Literal["lenet", "dcgan"] = "lenet"  # the paper's MNIST network, or the DCGAN conv stack
    width: PositiveInt = 32  # first convolution's channels (lenet: 32 and 48 x width / 32, as the paper at 32)
    hidden: PositiveInt = 100  # units of the heads' hidden layers (paper: 100)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # before each head's layers
    grl_lambda: NonNegativeFloat | None = None  # None: the paper's schedule; a number: fixed (0 = source only)
    gamma: PositiveFloat = 10.0  # lambda_p = 2 / (1 + exp(-gamma p)) - 1
    lr_decay: bool = True  # mu_p = 1 / (1 + alpha p)^beta times train.lr
    alpha: NonNegativeFloat = 10.0
    beta: NonNegativeFloat = 0.75


# ----------------------------------------------------------------------------- the gradient-reversal layer


class GradientReversal(torch.autograd.Function):
    """R_lambda (Ganin et al. 2016, Eq. 20): identity forward, gradient times -lambda backward."""

    @staticmethod
    def forward(ctx, x: Tensor, lambda_: float) -> Tensor:  # noqa: ANN001
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: ANN001
        return -ctx.lambda_ * grad, None


def reverse_gradient(x: Tensor, lambda_: float) -> Tensor:
    return GradientReversal.apply(x, lambda_)


def grl_lambda(progress: float, gamma: float = 10.0) -> float:
    """lambda_p = 2 / (1 + exp(-gamma p)) - 1 (Ganin et al. 2016, Sec. 5.2.2): 0 at p = 0, ~1 at p = 1."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


def lr_factor(progress: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """mu_p / mu_0 = 1 / (1 + alpha p)^beta (Ganin et al. 2016, Sec. 5.2.2)."""
    return 1.0 / (1.0 + alpha * progress) ** beta


# ----------------------------------------------------------------------------- networks


class LeNetFeatures(nn.Module):
    """The paper's MNIST feature extractor: (B, C, s, s) -> (B, 48 w/32 * m * m), m = ((s - 4)/2 - 4)/2."""

    def __init__(self, image_size: int, channels: int, width: int) -> None:
        super().__init__()
        second = max(1, round(48 * width / 32))
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise GenzooError(f"the lenet features need images of at least 16 px, not {image_size}; set "
                              "data.image_size=28 (or 16), or model.features=dcgan.")
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # (B, w, (s-4)/2, .)
            nn.Conv2d(width, second, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # (B, 48, m, m)
        )
        self.feature_dim = second * side * side

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten(1)


def head(inputs: int, hidden: int, outputs: int, layers: int, dropout: float) -> nn.Sequential:
    """`layers` hidden ReLU layers of `hidden` units, then a linear layer to `outputs`."""
    modules: list[nn.Module] = []
    for _ in range(layers):
        modules += [nn.Dropout(dropout), nn.Linear(inputs, hidden), nn.ReLU(inplace=True)]
        inputs = hidden
    return nn.Sequential(*modules, nn.Linear(inputs, outputs))


# ----------------------------------------------------------------------------- model


@MODELS.register("dann")
class DANN(GenerativeModel):
    Config = DANNConfig
    modality = "label"
    requires = ("source", "source_label", "target")
    ema_modules = ("features", "label_head", "domain_head")

    def __init__(self, config: DANNConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if not info.num_classes or info.image_size is None:
            raise GenzooError("dann needs a labelled image source beside an unlabelled target; set data.name to a "
                              "labelled image dataset and data.target=NAME (e.g. data.name=mnist data.target=mnist-m-style).")
        self.num_classes = info.num_classes
        if config.features == "lenet":
            self.features = LeNetFeatures(info.image_size, info.channels, config.width)
        else:
            self.features = DownConvStack(info.image_size, info.channels, config.width, out_dim=None)
        dim = self.features.feature_dim
        self.label_head = head(dim, config.hidden, self.num_classes, 2, config.dropout)  # G_y: 100-100-K
        self.domain_head = head(dim, config.hidden, 1, 1, config.dropout)  # G_d: 100-1
        self.grl_lambda = 0.0 if config.grl_lambda is None else config.grl_lambda  # set by `schedule` every step

    def schedule(self, step: int, total: int) -> Scheduled:
        """lambda_p and mu_p / mu_0 at p = step / total (Sec. 5.2.2); sets `grl_lambda` for `forward`."""
        config, progress = self.config, step / total
        self.grl_lambda = grl_lambda(progress, config.gamma) if config.grl_lambda is None else config.grl_lambda
        factor = lr_factor(progress, config.alpha, config.beta) if config.lr_decay else 1.0
        return Scheduled(lr={"main": factor}, values={"grl_lambda": self.grl_lambda, "lr_factor": factor})

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        source, labels, target = batch["source"], batch["source_label"], batch["target"]  # (B, C, H, W), (B,), (B', C, H, W)
        features = self.features(torch.cat([source, target]))  # (B + B', D): one pass, shared batch statistics
        n = len(source)
        logits = self.label_head(features[:n]).float()  # (B, K)
        loss_label = F.cross_entropy(logits, labels)  # L_y on the source
        domain = self.domain_head(reverse_gradient(features, self.grl_lambda)).float().squeeze(1)  # (B + B',)
        is_target = torch.cat([torch.zeros(n), torch.ones(len(target))]).to(domain)  # d_i: 0 source, 1 target
        loss_domain = (F.binary_cross_entropy_with_logits(domain[:n], is_target[:n])
                       + F.binary_cross_entropy_with_logits(domain[n:], is_target[n:]))  # L_d(source) + L_d(target)
        return {"total": loss_label + loss_domain, "label": loss_label.detach(), "domain": loss_domain.detach(),
                "accuracy": (logits.detach().argmax(1) == labels).float().mean(),  # on the source batch
                "domain_accuracy": ((domain.detach() > 0).float() == is_target).float().mean()}  # 0.5: indistinguishable

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Class logits (B, K) of images (B, C, H, W) in [-1, 1]."""
        return self.label_head(self.features(x))

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """The features G_f(x) (B, D) the label and domain classifiers read."""
        return self.features(x)

"""Classifier: a convolutional network trained with cross-entropy, p(y | x).

Not a generative model, but trained, checkpointed, resumed and evaluated the same way, because
several things around generative models need one: adversarial examples attack a classifier, domain
adaptation compares with a classifier trained on the source alone and one trained on the target
(the oracle), and a classifier scores whether a conditional model draws the class it was asked for.

The network is the DCGAN discriminator stack (strided convolutions, batch norm, LeakyReLU; Radford
et al. 2016, `genzoo.nn.dcgan`) as a feature extractor phi(x), then dropout and a linear layer to
K logits. The loss is the cross-entropy
    L = -1/B sum_i log softmax(W phi(x_i) + b)_{y_i},
with optional label smoothing (Szegedy et al. 2016, Sec. 7: the target puts 1 - eps on y and
eps / K on every class). `predict(x)` gives the logits (B, K); `genzoo eval RUN --metrics accuracy`
scores it on the run's data, `genzoo attack RUN` attacks it.

Adversarial training (`adversarial: {eps: 0.1, steps: 7}`; Madry et al., "Towards Deep Learning
Models Resistant to Adversarial Attacks", ICLR 2018, Eq. 2) minimises the robust loss
    min_theta E_(x,y) max_{||delta||_inf <= eps} L(theta, x + delta, y),
approximating the inner maximum by PGD (`genzoo.attacks.pgd`, random start, the last iterate as in
the paper) on every training batch. The attack runs with the model in eval mode (batch-norm running
statistics, no dropout: the function it will be attacked through at test time), the update in
training mode. `mix` < 1 adds the clean loss, (1 - mix) L(x) + mix L(x_adv) (Goodfellow et al. 2015,
Eq. 4, used 0.5); Madry et al. train on adversarial examples only (mix = 1).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from pydantic import Field, PositiveFloat, PositiveInt
from torch import Tensor, nn

from genzoo.config import FamilyConfig, StrictModel
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, GenerativeModel
from genzoo.nn import DownConvStack
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class AdversarialTraining(StrictModel):
    eps: PositiveFloat = 0.1  # radius of the ball, in [0, 1] pixel units (Madry et al.: 0.3 on MNIST)
    norm: Literal["linf", "l2"] = "linf"
    steps: PositiveInt = 7  # PGD steps per training batch (Madry et al.: 40 on MNIST, 7 on CIFAR-10)
    step_size: PositiveFloat | None = None  # alpha in pixel units; None: 2.5 eps / steps
    mix: float = Field(1.0, ge=0.0, le=1.0)  # weight of the adversarial loss; the clean loss gets 1 - mix


class ClassifierConfig(FamilyConfig):
    width: PositiveInt = 32  # channels of the first convolution (doubled at every stride-2 layer)
    norm: Literal["batch", "layer", "none"] = "batch"  # normalisation after each strided convolution but the first
    dropout: float = Field(0.2, ge=0.0, lt=1.0)  # before the linear layer
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)  # eps of Szegedy et al. 2016
    adversarial: AdversarialTraining | None = None  # PGD adversarial training (Madry et al. 2018); None: plain


# ----------------------------------------------------------------------------- model


@MODELS.register("classifier")
class Classifier(GenerativeModel):
    Config = ClassifierConfig
    modality = "label"
    requires = ("image", "label")
    ema_modules = ("features", "head")

    def __init__(self, config: ClassifierConfig, info: DataInfo) -> None:
        super().__init__(config, info)
        if not info.num_classes:
            raise GenzooError("a classifier needs class labels, and this dataset has none; use a labelled dataset "
                              "(e.g. fashion-mnist, or an image folder with one sub-folder per class).")
        self.num_classes = info.num_classes
        self.features = DownConvStack(info.image_size, info.channels, config.width, out_dim=None, norm=config.norm)  # phi: (B, F)
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(self.features.feature_dim, self.num_classes))
        # PyTorch's default (Kaiming-uniform) initialisation: with DCGAN's N(0, 0.02) the first features are
        # nearly constant and batch norm's running statistics, which eval mode uses, lag far behind the batch's

    def forward(self, phase: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x, labels = batch["image"], batch["label"]  # (B, C, H, W) in [-1, 1], (B,)
        logits = self.logits(x).float()  # (B, K)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.config.label_smoothing)
        accuracy = (logits.detach().argmax(1) == labels).float().mean()  # on the training batch, for the log
        adversarial = self.config.adversarial
        if adversarial is None:
            return {"total": loss, "accuracy": accuracy}
        x_adv = self.adversarial_examples(x, labels)  # (B, C, H, W), no gradient to the weights
        logits_adv = self.logits(x_adv).float()  # (B, K)
        loss_adv = F.cross_entropy(logits_adv, labels, label_smoothing=self.config.label_smoothing)
        total = (1 - adversarial.mix) * loss + adversarial.mix * loss_adv
        return {"total": total, "clean": loss.detach(), "adversarial": loss_adv.detach(), "accuracy": accuracy,
                "robust_accuracy": (logits_adv.detach().argmax(1) == labels).float().mean()}

    def adversarial_examples(self, x: Tensor, labels: Tensor) -> Tensor:
        """The inner maximisation of Madry et al. (2018), Eq. 2: PGD from a random start, the last iterate,
        computed with the model in eval mode and the weights frozen. (B, C, H, W) -> (B, C, H, W)."""
        from genzoo.attacks import pgd

        settings, was_training = self.config.adversarial, self.training
        self.eval()
        try:
            return pgd(self.logits, x.detach(), labels, settings.eps, settings.steps, settings.step_size,
                       settings.norm, keep_best=False)
        finally:
            self.train(was_training)

    def logits(self, x: Tensor) -> Tensor:
        """Class logits (B, K) of images (B, C, H, W) in [-1, 1], differentiable (attacks use it)."""
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Class logits (B, K) of images (B, C, H, W) in [-1, 1]."""
        return self.logits(x)

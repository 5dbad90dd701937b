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
scores it on the run's data.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import Tensor, nn

from genzoo.config import FamilyConfig
from genzoo.errors import GenzooError
from genzoo.models.base import DataInfo, GenerativeModel
from genzoo.nn import DownConvStack
from genzoo.registry import MODELS

# ----------------------------------------------------------------------------- config


class ClassifierConfig(FamilyConfig):
    width: PositiveInt = 32  # channels of the first convolution (doubled at every stride-2 layer)
    norm: Literal["batch", "layer", "none"] = "batch"  # normalisation after each strided convolution but the first
    dropout: float = Field(0.2, ge=0.0, lt=1.0)  # before the linear layer
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)  # eps of Szegedy et al. 2016


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
        logits = self.head(self.features(x)).float()  # (B, K)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.config.label_smoothing)
        accuracy = (logits.detach().argmax(1) == labels).float().mean()  # on the training batch, for the log
        return {"total": loss, "accuracy": accuracy}

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Class logits (B, K) of images (B, C, H, W) in [-1, 1]."""
        return self.head(self.features(x))

"""Feature networks for the sample-quality metrics, in the FEATURES registry.

A feature network maps images in [-1, 1] to `{"features": (B, D), "logits": (B, C)}` and carries
what a score's protocol must state: its name, the sha256 of its weights and how images are resized
to its input. Two are registered:
- `fmnist`: genzoo's own Fashion-MNIST classifier, shipped with the package (works offline);
- `inception`: the FID Inception-v3 (Heusel et al. 2017), weights from `--inception-weights PATH`,
  `$GENZOO_INCEPTION`, or the standard pytorch-fid URL.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.errors import GenzooError
from genzoo.registry import FEATURES
from genzoo.io import sha256


@dataclass
class FeatureNetwork:
    name: str
    network: nn.Module
    weights_sha256: str
    feature_dim: int
    num_classes: int
    input_size: int  # side of the square images it is fed (folders are resized to it)
    channels: int
    resize: str  # how images of another size are brought to input_size, for the protocol
    resize_here: bool = True  # False: the network resizes its input itself (Inception)

    @torch.no_grad()
    def __call__(self, images: Tensor) -> dict[str, Tensor]:
        """(B, C, H, W) in [-1, 1] -> features (B, D) and logits (B, K), float32."""
        out = self.network(self._prepare(images))
        return {"features": out["features"].float(), "logits": out["logits"].float()}

    def activations(self, images: Tensor) -> list[Tensor]:
        """The output of every ReLU of the network for (B, C, H, W) images in [-1, 1], differentiable with
        respect to the images (for perceptual losses): a list of (B, ...) tensors, input to output."""
        captured: list[Tensor] = []
        hooks = [m.register_forward_hook(lambda _m, _i, output: captured.append(output.clone()))
                 for m in self.network.modules() if isinstance(m, nn.ReLU)]
        try:
            self.network(self._prepare(images))
        finally:
            for hook in hooks:
                hook.remove()
        return captured

    def _prepare(self, images: Tensor) -> Tensor:
        images = images.float()
        if images.shape[1] != self.channels:
            images = _to_grey(images) if self.channels == 1 else images.expand(-1, 3, -1, -1)
        if self.resize_here and images.shape[-1] != self.input_size:
            images = F.interpolate(images, size=(self.input_size, self.input_size), mode="bilinear", antialias=True,
                                   align_corners=False)
        return images

    def to(self, device: torch.device | str) -> FeatureNetwork:
        self.network.to(device)
        return self

    @property
    def protocol(self) -> dict[str, str | int]:
        return {"extractor": self.name, "extractor_sha256": self.weights_sha256, "feature_dim": self.feature_dim,
                "resize": self.resize}


def _to_grey(images: Tensor) -> Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)  # ITU-R 601-2 luma
    return (images * weights).sum(1, keepdim=True)  # (B, 1, H, W)


@FEATURES.register("fmnist")
def fmnist_features(weights: str | None = None) -> FeatureNetwork:
    """genzoo's Fashion-MNIST CNN (128-d features, 10 classes); shipped, offline."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from genzoo.metrics.fmnist_net import FEATURE_DIM, NUM_CLASSES, WEIGHTS, FMNISTNet

    path = weights or WEIGHTS
    network = FMNISTNet()
    try:
        network.load_state_dict(load_file(str(path)))
    except (SafetensorError, OSError, RuntimeError) as error:
        raise GenzooError(f"{path} does not hold weights that fit the fmnist feature network ({type(error).__name__}); "
                          "give the file `python -m genzoo.metrics.fmnist_net` writes.") from None
    return FeatureNetwork("fmnist", network.eval(), sha256(path), FEATURE_DIM, NUM_CLASSES, 28, 1,
                          "grey (ITU-R 601 luma) and bilinear antialiased resize to 28x28 when needed")


@FEATURES.register("inception")
def inception_features(weights: str | None = None) -> FeatureNetwork:
    """FID Inception-v3 (2048-d pool3, 1008-class head); weights by path, $GENZOO_INCEPTION or URL."""
    from genzoo.metrics.inception import FEATURE_DIM, NUM_CLASSES, RESIZE, load_inception

    network, digest = load_inception(weights)
    return FeatureNetwork("inception", network.eval(), digest, FEATURE_DIM, NUM_CLASSES, 299, 3, RESIZE, resize_here=False)


def load_features(name: str, weights: str | None = None) -> FeatureNetwork:
    with torch.random.fork_rng(devices=[]):  # building the network draws initial weights: the caller's random state stays
        return FEATURES.get(name)(weights)

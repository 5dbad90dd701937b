"""Feature networks for the sample-quality metrics, in the FEATURES registry.

A feature network maps images in [-1, 1] to `{"features": (B, D), "logits": (B, C)}` and carries
what a score's protocol must state: its name, the sha256 of its weights and how images are resized
to its input. Anything but float images in [-1, 1] is refused in one sentence: uint8 or [0, 255]
images would give features of another input without a word. Two are registered:
- `fmnist`: genzoo's own Fashion-MNIST classifier, shipped with the package (works offline);
- `inception`: the FID Inception-v3 (Heusel et al. 2017), weights from `--inception-weights PATH`,
  `$GENZOO_INCEPTION`, or the standard pytorch-fid URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.errors import GenzooError
from genzoo.registry import FEATURES
from genzoo.io import sha256

RANGE_SLACK = 1e-3  # rounding in a model's last layer may step this far outside [-1, 1]


@dataclass
class FeatureNetwork:
    name: str
    network: nn.Module
    weights_sha256: str
    feature_dim: int
    num_classes: int
    input_size: int  # side of the square images the network body sees
    channels: int
    resize: str  # how images of another size are brought to input_size, for the protocol
    resize_images: Callable[[Tensor, int], Tensor]  # (B, C, H, W) in [-1, 1] -> (B, C, s, s), that resize

    @torch.no_grad()
    def __call__(self, images: Tensor) -> dict[str, Tensor]:
        """(B, C, H, W) float in [-1, 1] -> features (B, D) and logits (B, K), float32."""
        out = self.network(self.prepare(images))
        return {"features": out["features"].float(), "logits": out["logits"].float()}

    def prepare(self, images: Tensor) -> Tensor:
        """What the network sees of (B, C, H, W) float images in [-1, 1]: its channels, input_size x input_size.
        Anything else (uint8, [0, 255] or [0, 1] scaled floats read as [-1, 1] would give wrong features
        without a word) is refused."""
        _check_images(images, self.name, check_range=True)
        return self._to_input(images)

    def activations(self, images: Tensor) -> list[Tensor]:
        """The output of every ReLU of the network for (B, C, H, W) images in [-1, 1], differentiable with
        respect to the images (for perceptual losses): a list of (B, ...) tensors, input to output."""
        _check_images(images, self.name, check_range=False)  # no host sync inside a training step
        captured: list[Tensor] = []
        hooks = [m.register_forward_hook(lambda _m, _i, output: captured.append(output.clone()))
                 for m in self.network.modules() if isinstance(m, nn.ReLU)]
        try:
            self.network(self._to_input(images))
        finally:
            for hook in hooks:
                hook.remove()
        return captured

    def _to_input(self, images: Tensor) -> Tensor:
        images = images.float()
        if images.shape[1] != self.channels:
            images = _to_grey(images) if self.channels == 1 else images.expand(-1, 3, -1, -1)
        if images.shape[-2:] != (self.input_size, self.input_size):
            images = self.resize_images(images, self.input_size)
        return images

    def to(self, device: torch.device | str) -> FeatureNetwork:
        self.network.to(device)
        return self

    @property
    def protocol(self) -> dict[str, str | int]:
        return {"extractor": self.name, "extractor_sha256": self.weights_sha256, "feature_dim": self.feature_dim,
                "resize": self.resize}


def _check_images(images: Tensor, name: str, check_range: bool) -> None:
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise GenzooError(f"the {name} feature network takes (B, 1 or 3, H, W) image tensors but got {shape}.")
    if not images.is_floating_point():
        raise GenzooError(f"the {name} feature network takes float images in [-1, 1] but got {images.dtype}; "
                          "convert them with images.float() / 127.5 - 1.")
    if check_range and images.numel():
        low, high = (float(v) for v in images.detach().aminmax())
        if not (-1 - RANGE_SLACK <= low and high <= 1 + RANGE_SLACK):  # also refuses NaN
            raise GenzooError(f"the {name} feature network takes images in [-1, 1] but got values in [{low:.4g}, "
                              f"{high:.4g}]; map [0, 255] images with x / 127.5 - 1 and [0, 1] ones with 2 x - 1.")


def _to_grey(images: Tensor) -> Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)  # ITU-R 601-2 luma
    return (images * weights).sum(1, keepdim=True)  # (B, 1, H, W)


def _resize_antialiased(images: Tensor, size: int) -> Tensor:
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


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
                          "grey (ITU-R 601 luma) and bilinear antialiased resize to 28x28 when needed",
                          _resize_antialiased)


@FEATURES.register("inception")
def inception_features(weights: str | None = None) -> FeatureNetwork:
    """FID Inception-v3 (2048-d pool3, 1008-class head); weights by path, $GENZOO_INCEPTION or URL."""
    from genzoo.metrics.inception import FEATURE_DIM, INPUT_SIZE, NUM_CLASSES, RESIZE, load_inception, resize_input

    network, digest = load_inception(weights)
    return FeatureNetwork("inception", network.eval(), digest, FEATURE_DIM, NUM_CLASSES, INPUT_SIZE, 3, RESIZE,
                          resize_input)


def load_features(name: str, weights: str | None = None) -> FeatureNetwork:
    with torch.random.fork_rng(devices=[]):  # building the network draws initial weights: the caller's random state stays
        return FEATURES.get(name)(weights)

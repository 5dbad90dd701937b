"""Feature networks for style transfer: VGG-19 (with weights the user has) and random multi-scale filters.

Each maps images (B, 3, H, W) in [-1, 1] to a dict of named activations, differentiable in the
images, and carries a `name` that reports print as it is, so a result made with random features is
never mistaken for one made with VGG.

- `vgg19`: torchvision's VGG-19 convolutional part (Simonyan & Zisserman 2015), as Gatys et al.
  (2016) use it: ImageNet normalisation inside the network, max pooling replaced by average pooling
  (their Sec. 2), style from relu1_1 .. relu5_1, content from relu4_2. Weights come from a file the
  user gives (`weights=PATH`: torchvision's `vgg19-dcbb9e9d.pth`, a full VGG-19 or only its
  `features.*`, .pth or .safetensors) or torchvision's cache; genzoo never downloads them.
- `random`: no weights at all. Ustyuzhaninov, Brendel, Gatys & Bethge, "What does it take to
  generate natural textures?" (ICLR 2017) show that one layer of random filters at several scales
  (theirs: sizes 3 to 55 px) already synthesises good textures. Here the large filters are replaced
  by an image pyramid: the same-size random 5 x 5 filters (Gaussian, unit norm, fixed seed) on the
  image halved (antialiased bilinear) 0 to 4 times, i.e. receptive fields of 5 to 80 px at a fraction of
  the cost, each followed by a ReLU. Layers `scale0` (finest) .. `scale4`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.errors import GenzooError


@dataclass
class StyleNetwork:
    name: str  # what reports say
    module: nn.Module  # (B, 3, H, W) in [-1, 1] -> {layer: (B, N, h, w)}
    content_layer: str
    style_layers: tuple[str, ...]
    style_weight: float  # beta that works with content weight 1 (Gatys et al.'s losses as written)
    layers: tuple[str, ...]  # every layer it can give, for error messages

    def __call__(self, images: Tensor, layers: set[str]) -> dict[str, Tensor]:
        unknown = layers - set(self.layers)
        if unknown:
            raise GenzooError(f"the {self.name} network has no layer {sorted(unknown)[0]!r}; choose among {', '.join(self.layers)}.")
        return self.module(images, layers)


# ----------------------------------------------------------------------------- random multi-scale filters

class RandomMultiscale(nn.Module):
    def __init__(self, filters: int = 128, kernel: int = 5, scales: int = 5, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        weights = torch.randn(scales, filters, 3, kernel, kernel, generator=generator)  # (S, N, 3, k, k)
        weights = weights / weights.flatten(2).norm(dim=2)[..., None, None, None]  # unit norm per filter
        self.register_buffer("weights", weights)
        self.names = tuple(f"scale{s}" for s in range(scales))

    def forward(self, images: Tensor, layers: set[str]) -> dict[str, Tensor]:
        out, x = {}, images  # (B, 3, H, W)
        deepest = max(self.names.index(name) for name in layers)
        for s in range(deepest + 1):
            if s:
                size = (max(1, x.shape[-2] // 2), max(1, x.shape[-1] // 2))  # antialiased: smooth gradients, no blocks
                x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)  # (B, 3, H / 2^s, W / 2^s)
            if self.names[s] in layers:
                padding = self.weights.shape[-1] // 2
                out[self.names[s]] = F.relu(F.conv2d(F.pad(x, (padding,) * 4, mode="replicate"), self.weights[s]))
        return out


def random_network(weights: str | None = None) -> StyleNetwork:
    if weights is not None:
        raise GenzooError("the random network has no weights to load; drop weights=, or use network=vgg19.")
    module = RandomMultiscale()
    return StyleNetwork("random multi-scale filters (Ustyuzhaninov et al. 2017; 5 scales x 128 random 5x5 filters, "
                        "seed 0; not VGG)", module, "scale2", module.names, 1e7, module.names)


# ----------------------------------------------------------------------------- VGG-19

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's VGG19_Weights.IMAGENET1K_V1
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """torchvision's VGG-19 `features` with named outputs (conv1_1, relu1_1, ..., pool5)."""

    def __init__(self, pooling: str = "avg") -> None:
        from torchvision.models.vgg import cfgs, make_layers

        super().__init__()
        self.features = make_layers(cfgs["E"])  # the same modules and parameter names as torchvision.models.vgg19
        names, block, index = [], 1, 1
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):
                names.append(f"conv{block}_{index}")
            elif isinstance(layer, nn.ReLU):
                names.append(f"relu{block}_{index}")
                index += 1
            else:
                names.append(f"pool{block}")
                block, index = block + 1, 1
        self.names = tuple(names)
        if pooling == "avg":  # Gatys et al. 2016, Sec. 2: average pooling gives slightly more appealing results
            for i, layer in enumerate(self.features):
                if isinstance(layer, nn.MaxPool2d):
                    self.features[i] = nn.AvgPool2d(2, 2)
        for i, layer in enumerate(self.features):
            if isinstance(layer, nn.ReLU):
                self.features[i] = nn.ReLU(inplace=False)  # activations are kept for the losses
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: Tensor, layers: set[str]) -> dict[str, Tensor]:
        x = ((images + 1) / 2 - self.mean) / self.std  # [-1, 1] -> ImageNet-normalised, inside the network
        out, last = {}, max(self.names.index(name) for name in layers)
        for name, layer in zip(self.names[: last + 1], self.features):
            x = layer(x)
            if name in layers:
                out[name] = x
        return out


def vgg19_weights_path(weights: str | None) -> Path:
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise GenzooError(f"VGG-19 weights file {weights!r} does not exist; give the path of {VGG19_FILE}.")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    if not cached.is_file():
        raise GenzooError(f"no VGG-19 weights here: put torchvision's {VGG19_FILE} in {cached.parent} or give "
                          "weights=PATH (genzoo never downloads them), or use network=random, which needs none.")
    return cached


def load_state(path: Path) -> dict[str, Tensor]:
    """Tensors of a .safetensors file or of a PyTorch state dict (loaded with weights_only=True)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  (any unreadable file is the same mistake for the user)
        raise GenzooError(f"{str(path)!r} is not a weights file genzoo can read ({type(error).__name__}); "
                          f"give torchvision's {VGG19_FILE} or a .safetensors file.") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise GenzooError(f"{str(path)!r} does not hold a state dict of tensors; give torchvision's {VGG19_FILE}.")
    return state


def vgg19_network(weights: str | None = None) -> StyleNetwork:
    from genzoo.io import sha256

    path = vgg19_weights_path(weights)
    state = load_state(path)
    features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    module = VGG19Features()
    try:
        missing, unexpected = module.features.load_state_dict(features or state, strict=False)
    except RuntimeError:
        missing, unexpected = ["(shapes differ)"], []
    if missing or unexpected:
        raise GenzooError(f"{str(path)!r} does not hold VGG-19 weights (its tensors do not match torchvision's "
                          f"vgg19 architecture, e.g. {(missing or unexpected)[0]!r}); give {VGG19_FILE}.")
    return StyleNetwork(f"VGG-19 ({path.name}, sha256 {sha256(path)[:12]})", module, "relu4_2",
                        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), 1e3, module.names)


NETWORKS: dict[str, Callable[[str | None], StyleNetwork]] = {"random": random_network, "vgg19": vgg19_network}

"""The FID Inception-v3 feature network: pool3 features (FID, KID, PR) and 1008 logits (IS).

Inception-v3 is Szegedy et al. (2016), "Rethinking the Inception Architecture for Computer Vision".
FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium") is defined on the TensorFlow graph `inception-2015-12-05`, not on torchvision's
ImageNet model. That graph differs from torchvision's Inception-v3 in three places, kept here as
pytorch-fid's port does, so that its weights file `pt_inception-2015-12-05-6726825d.pth` loads with
strict key and shape checks and the features equal pytorch-fid's:

- the pool branch of Mixed_5b..5d (InceptionA), Mixed_6b..6e (InceptionC) and Mixed_7b (InceptionE)
  averages without counting the zero padding (TF's `avg_pool`, `count_include_pad=False`);
- the pool branch of Mixed_7c uses 3x3 max pooling instead of average pooling;
- the classifier has 1008 outputs (the 1000 ImageNet classes and 8 unused ones).

Input convention: `forward(images)` takes float images in [-1, 1] (genzoo's convention) or uint8
(any integer dtype) images in [0, 255], of shape (B, 3 or 1, H, W); grey is repeated to 3 channels.
They are resized to 299 x 299 exactly as pytorch-fid's `InceptionV3(resize_input=True,
normalize_input=True)` does: to [0, 1] (u / 255), PyTorch bilinear interpolation with
`align_corners=False` and no antialiasing, then to [-1, 1]; uint8 images give pytorch-fid's features
bit for bit (genzoo's `FeatureNetwork` wrapper, which evaluation uses, takes only floats in [-1, 1]
and refuses uint8). torch-fidelity instead resizes with TF1's bilinear rule and scales uint8 as
(u - 128) / 128, so its features differ from these (at 299 x 299, only by that scaling).

Output: `{"features": (B, 2048) pool3, "logits": (B, 1008)}`. The logits are pool3 @ fc.weight.T
*without* the fc bias, which is what the original Inception Score code computes (Salimans et al.
2016, openai/improved-gan: `tf.matmul(pool3, w)` on `softmax/logits/MatMul`) and what torch-fidelity
calls `logits_unbiased`; IS is the softmax over all 1008 of them.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.inception import BasicConv2d, InceptionA, InceptionB, InceptionC, InceptionD, InceptionE

from genzoo.errors import GenzooError
from genzoo.io import sha256

INCEPTION_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048  # pool3 features
NUM_CLASSES = 1008  # logits of the 2015-12-05 graph's classifier
RESIZE = "bilinear 299x299 (pytorch-fid)"
INPUT_SIZE = 299
_FIX = f"pass the path of pt_inception-2015-12-05-6726825d.pth from {INCEPTION_URL} (or set $GENZOO_INCEPTION)"


def _tf_avg_pool(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)  # (B, C, H, W)


class FIDInceptionA(InceptionA):
    """torchvision's InceptionA with TF's average pooling (padding not counted)."""

    def forward(self, x: Tensor) -> Tensor:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, branch_pool], 1)  # (B, 224 + pool, H, W)


class FIDInceptionC(InceptionC):
    """torchvision's InceptionC with TF's average pooling (padding not counted)."""

    def forward(self, x: Tensor) -> Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = layer(branch7x7dbl)
        branch_pool = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, branch_pool], 1)  # (B, 768, 17, 17)


class FIDInceptionE(InceptionE):
    """torchvision's InceptionE with TF's pool branch: average (Mixed_7b) or max (Mixed_7c) pooling."""

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__(in_channels)
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool  # a plain attribute, not in the state dict

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3_1(x)  # (B, 384, 8, 8)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)  # (B, 768, 8, 8)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))  # (B, 384, 8, 8)
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        if self.pool == "max":
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)  # (B, C, 8, 8)
        else:
            pooled = _tf_avg_pool(x)  # (B, C, 8, 8)
        return torch.cat([self.branch1x1(x), branch3x3, branch3x3dbl, self.branch_pool(pooled)], 1)  # (B, 2048, 8, 8)


class FIDInceptionV3(nn.Module):
    """Inception-v3 of the TF 2015-12-05 graph; attribute names match pytorch-fid's weights file."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """(B, 3 or 1, H, W), float in [-1, 1] or integers in [0, 255] -> features (B, 2048), logits (B, 1008)."""
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise GenzooError(f"Inception expects images of shape (B, 3 or 1, H, W), got {tuple(images.shape)}.")
        # pytorch-fid's order of operations, for bit-equal features on uint8 images: [0, 1], resize, then [-1, 1]
        x = (images.float() + 1) / 2 if images.is_floating_point() else images.float() / 255  # (B, C, H, W) in [0, 1]
        x = _resize_unit(x.expand(-1, 3, -1, -1), INPUT_SIZE)  # (B, 3, 299, 299); grey repeated
        x = 2 * x - 1  # (B, 3, 299, 299) in [-1, 1]
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (B, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # (B, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 192, 35, 35)
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))  # (B, 288, 35, 35)
        x = self.Mixed_6a(x)  # (B, 768, 17, 17)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))  # (B, 768, 17, 17)
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))  # (B, 2048, 8, 8)
        features = F.adaptive_avg_pool2d(x, 1).flatten(1)  # (B, 2048) pool3
        logits = features @ self.fc.weight.T  # (B, 1008), no bias: as the original IS code
        return {"features": features, "logits": logits}


def _resize_unit(x: Tensor, size: int) -> Tensor:
    """pytorch-fid's resize of images in [0, 1]: bilinear, align_corners=False, no antialiasing, no crop."""
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)  # (B, C, size, size)


def resize_input(images: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """(B, C, H, W) in [-1, 1] -> (B, C, size, size) in [-1, 1], resized as `FIDInceptionV3.forward` does (in
    [0, 1]), so that the network's own resize is then the identity: for folders of images of several sizes."""
    return 2 * _resize_unit((images + 1) / 2, size) - 1


def _read_local(path: Path) -> object:
    if not path.is_file():
        raise GenzooError(f"Inception weights file {path} is missing or not a file; {_FIX}.")
    with warnings.catch_warnings(record=True) as caught:  # torch's warnings about a junk file would bury the error
        warnings.simplefilter("always")
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001  (junk makes the safe unpickler raise KeyError, IndexError, ...)
            raise GenzooError(f"{path} is not a PyTorch weights file ({type(error).__name__}); {_FIX}.") from None
    for warning in caught:  # the file loaded: its warnings are worth showing
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return state_dict


def _download() -> tuple[object, Path]:
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        state_dict = torch.hub.load_state_dict_from_url(
            INCEPTION_URL, model_dir=str(folder), map_location="cpu", progress=True, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:  # no network, bad file
        detail = " ".join(str(error).split())  # on one line
        raise GenzooError(f"could not download the FID Inception weights ({type(error).__name__}: {detail}); "
                          f"download {INCEPTION_URL} yourself and pass its path (or set $GENZOO_INCEPTION).") from None
    return state_dict, folder / INCEPTION_URL.rsplit("/", 1)[1]


def _check_state_dict(state_dict: object, path: Path) -> None:
    if not isinstance(state_dict, dict) or not all(isinstance(v, Tensor) for v in state_dict.values()):
        raise GenzooError(f"{path} holds a {type(state_dict).__name__}, not a state dict of tensors; {_FIX}.")
    with torch.device("meta"):  # shapes only: nothing allocated or initialised
        expected = {key: value.shape for key, value in FIDInceptionV3().state_dict().items()}
    missing = [k for k in expected if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in expected]
    misshapen = [k for k in expected if k in state_dict and state_dict[k].shape != expected[k]]
    if missing or unexpected or misshapen:
        first = (missing + unexpected + misshapen)[0]
        raise GenzooError(f"{path} is not the FID Inception-v3 state dict ({len(missing)} keys missing, "
                          f"{len(unexpected)} unexpected, {len(misshapen)} of the wrong shape; first {first!r}); "
                          f"{_FIX}.")


def load_inception(weights: str | Path | None = None) -> tuple[FIDInceptionV3, str]:
    """The FID Inception network in eval mode without gradients, and the sha256 of its weights file.

    weights: a local path; else $GENZOO_INCEPTION; else the standard file from INCEPTION_URL, cached
    by torch.hub. Every failure is a GenzooError that says what to do.
    """
    local = weights if weights is not None else os.environ.get("GENZOO_INCEPTION") or None
    if local is not None:
        path = Path(local).expanduser()
        state_dict = _read_local(path)
    else:
        state_dict, path = _download()
    _check_state_dict(state_dict, path)
    network = FIDInceptionV3()
    try:
        network.load_state_dict(state_dict, strict=True)
    except RuntimeError:  # e.g. num_batches_tracked missing from a file marked as a new BatchNorm version
        raise GenzooError(f"{path} does not load strictly into the FID Inception-v3; {_FIX}.") from None
    return network.requires_grad_(False).eval(), sha256(path)

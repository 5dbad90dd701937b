"""Full-reference image similarity, per image: PSNR and SSIM (the numbers NeRF and view synthesis report).

Images are (B, C, H, W) with values in [0, data_range] ([0, 1] by default); both return (B,).
- PSNR = 10 log10(L^2 / MSE), MSE over the image's pixels and channels (inf for identical images).
- SSIM, Wang, Bovik, Sheikh & Simoncelli (2004), Eq. 13: for local statistics under an 11 x 11
  Gaussian window of std 1.5 (Sec. III-C),
      SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
  C1 = (0.01 L)^2, C2 = (0.03 L)^2, averaged over the positions where the window lies inside the image
  and over channels. This is scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False)` and torchmetrics' default SSIM (tests check both).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.errors import GenzooError

WINDOW, WINDOW_STD = 11, 1.5


def psnr(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB per image: (B,)."""
    _check(x, y)
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)  # (B,)
    return 10 * torch.log10(data_range**2 / mse)


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """Structural similarity per image: (B,), in [-1, 1] (1 for identical images)."""
    _check(x, y)
    if min(x.shape[-2:]) < WINDOW:
        raise GenzooError(f"SSIM needs images of at least {WINDOW} x {WINDOW} pixels; got {tuple(x.shape[-2:])}.")
    x, y = x.double(), y.double()
    taps = torch.exp(-((torch.arange(WINDOW, dtype=torch.float64) - WINDOW // 2) ** 2) / (2 * WINDOW_STD**2))
    taps = (taps / taps.sum()).to(x.device)
    channels = x.shape[1]
    kernel = (taps[:, None] * taps[None, :]).expand(channels, 1, WINDOW, WINDOW)  # (C, 1, 11, 11), depthwise

    def blur(z: Tensor) -> Tensor:
        return F.conv2d(z, kernel, groups=channels)  # valid positions only: (B, C, H - 10, W - 10)

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = (2 * mu_x * mu_y + c1) * (2 * cov + c2) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.flatten(1).mean(1)


def _check(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.dim() != 4:
        raise GenzooError(f"images to compare must have one shape (B, C, H, W); got {tuple(x.shape)} and {tuple(y.shape)}.")


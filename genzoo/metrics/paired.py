"""Per-pair metrics of paired translation (pix2pix): how close translate(a) is to its own target b.

On held-out pairs (evaluate with --split test), images mapped from [-1, 1] to [0, 1]:
- L1: mean |b - G(a)| per pixel (the paper's training loss, Isola et al. 2017, Eq. 3);
- PSNR: 10 log10(1 / MSE) dB of the pooled mean squared error (as `recon`);
- SSIM: Wang, Bovik, Sheikh & Simoncelli, "Image Quality Assessment: From Error Visibility to
  Structural Similarity" (2004), Eq. 13, with an 11 x 11 Gaussian window of std 1.5 and
  C1 = (0.01 L)^2, C2 = (0.03 L)^2 (L = 1), population statistics, averaged over the positions where
  the window fits inside the image (no padding), the channels and the images: the settings of
  scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=1)` and torchmetrics' `structural_similarity_index_measure` (tests compare with both).
The pairs are the first n of a seeded permutation, n = the evaluation's sample count (at most all).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.errors import GenzooError
from genzoo.metrics.context import EvalContext, Score
from genzoo.metrics.translation import two_domain_data
from genzoo.models.base import CanTranslate
from genzoo.registry import METRICS

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, dtype: torch.dtype = torch.float64) -> Tensor:
    """The normalised 1-D Gaussian g_i = exp(-i^2 / (2 sigma^2)) / sum, i = -(size - 1)/2 .. (size - 1)/2. (size,)"""
    offsets = torch.arange(size, dtype=dtype) - (size - 1) / 2
    weights = torch.exp(-(offsets**2) / (2 * sigma**2))
    return weights / weights.sum()


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """SSIM of each image pair (Wang et al. 2004, Eq. 13), x and y (B, C, H, W) on a scale of `data_range`:
    mean over channels and window positions of (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)).
    (B,) float64."""
    if x.shape != y.shape:
        raise GenzooError(f"SSIM needs two images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}.")
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise GenzooError(f"SSIM needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels (its window), and these "
                          f"are {x.shape[-2]} x {x.shape[-1]}; evaluate at a larger data.image_size.")
    x, y = x.double(), y.double()
    channels = x.shape[1]
    g = gaussian_window(dtype=x.dtype).to(x.device)
    rows = g.view(1, 1, -1, 1).expand(channels, 1, -1, 1)  # (C, 1, k, 1) depthwise
    cols = g.view(1, 1, 1, -1).expand(channels, 1, 1, -1)  # (C, 1, 1, k)

    def blur(image: Tensor) -> Tensor:  # Gaussian-weighted local mean at every position the window fits: (B, C, H-k+1, W-k+1)
        return F.conv2d(F.conv2d(image, rows, groups=channels), cols, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2  # sigma_x^2 (population)
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y  # sigma_xy
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.flatten(1).mean(1)  # (B,)


@METRICS.register("paired")
def paired(ctx: EvalContext) -> list[Score]:
    """L1, PSNR and SSIM of translate(a) against its own b on the evaluation split's pairs (pix2pix)."""
    model = ctx.model
    if not isinstance(model, CanTranslate):
        raise GenzooError("the paired metric needs a model that translates images (e.g. pix2pix); drop it from --metrics.")
    data = two_domain_data(ctx)
    if data is None or not data.info.paired:
        raise GenzooError("the paired metric needs paired data (a[i] and b[i] show the same thing: paired-folder, "
                          "edges2fashion, data.task=...); drop it from --metrics for unpaired domains.")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(ctx.seed))[: min(ctx.num_fake, len(data))]
    l1 = squared = similarity = 0.0
    pixels = 0
    for chunk in order.split(ctx.batch_size):
        batch = data.batch(chunk.to(data.device))
        a, b = batch["a"].to(model.device), batch["b"].to(model.device)
        u, u_hat = (b.double() + 1) / 2, (model.translate(a, to="b").double() + 1) / 2  # [0, 1]
        l1 += (u - u_hat).abs().sum().item()
        squared += (u - u_hat).pow(2).sum().item()
        similarity += ssim(u_hat, u).sum().item()
        pixels += u.numel()
    mse = squared / pixels
    psnr = math.inf if mse == 0 else 10 * math.log10(1 / mse)
    protocol = {**ctx.protocol, "n_fake": len(order), "pairs": f"{len(order)} pairs, translation a->b against b",
                "range": "images mapped to [0, 1]"}
    ssim_protocol = {"window": f"Gaussian {SSIM_WINDOW}x{SSIM_WINDOW}, sigma {SSIM_SIGMA}", "k1": SSIM_K1, "k2": SSIM_K2,
                     "padding": "none (positions where the window fits)"}
    return [Score("l1", l1 / pixels, None, {**protocol, "metric": "l1"}),
            Score("psnr", psnr, None, {**protocol, "metric": "psnr", "mse": mse}),
            Score("ssim", similarity / len(order), None, {**protocol, "metric": "ssim", **ssim_protocol})]

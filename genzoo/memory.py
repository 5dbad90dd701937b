"""Refuse, before anything is allocated, a size that cannot fit in memory.

A typo such as data.image_size=28000 or train.batch_size=10000000 would otherwise end minutes later
in an allocator traceback (or the machine swapping). Each check compares an estimate with the memory
the device has: on the CPU the physical memory (what could be made available), on a GPU its total.
"""

from __future__ import annotations

import os
from typing import Any

from genzoo.errors import GenzooError


def device_memory(device: Any = "cpu") -> int:
    """Bytes of memory of the device: physical memory on the CPU, total memory on a CUDA GPU."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf: assume it fits
        return 1 << 62


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""


def check_fits(nbytes: float, what: str, advice: str, device: Any = "cpu") -> None:
    """Raise one sentence when `nbytes` exceed the device's memory."""
    available = device_memory(device)
    if nbytes > available:
        raise GenzooError(f"{what} would need {_size(nbytes)}, more than the {_size(available)} of memory this machine "
                          f"has; {advice}.")


def check_model_fits(family: Any, config: Any, info: Any, batch_size: int, device: Any) -> None:
    """Build the model on PyTorch's `meta` device (shapes only, nothing allocated) and refuse it when its
    weights with their gradients, two Adam moments and an average (5 copies), or one batch of its inputs,
    cannot fit."""
    import warnings

    import torch

    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a frozen feature network's weights "copied" onto meta tensors
            model = family(config, info)
        weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    except Exception:  # noqa: BLE001  (a family that cannot be built on meta is checked when it is built for real)
        return
    check_fits(5 * weights, f"this {type(model).__name__} model ({_size(weights)} of weights, trained with Adam)",
               "lower data.image_size or the model's widths", device)
    check_batch_fits(batch_size, info.channels, info.image_size, device)


def check_batch_fits(batch_size: int, channels: int | None, image_size: int | None, device: Any = "cpu") -> None:
    """Refuse a batch of float images that alone cannot fit (before the data are even loaded)."""
    if image_size:
        batch = batch_size * (channels or 1) * image_size**2 * 4
        check_fits(batch, f"one batch of {batch_size} images of {channels or 1}x{image_size}x{image_size}",
                   "lower train.batch_size or data.image_size", device)


def check_images_fit(count: int, channels: int, image_size: int, what: str) -> None:
    """Refuse `count` uint8 images of this size (a dataset in memory) that cannot fit."""
    check_fits(count * channels * image_size**2, f"{what} ({count} images of {channels}x{image_size}x{image_size})",
               "lower data.image_size or data.max_images", "cpu")

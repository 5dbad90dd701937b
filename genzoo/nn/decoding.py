"""Running many tiny operations one after another (sampling a pixel or a character at a time).

Autoregressive sampling is thousands of small operations in sequence (the horizontal stack on a few
columns, one recurrent step). On the CPU each of them is too small to share among threads, and the
hand-offs cost more than they save: on this project's busy 2-core machine a PixelCNN's pixel step
took 17x longer on 2 OpenMP threads than on 1, and oneDNN's convolutions 2x longer than PyTorch's own
at these sizes. `sequential_cpu` runs a block on one thread without oneDNN, and restores both after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def sequential_cpu(device: torch.device) -> Iterator[None]:
    """One thread and PyTorch's own convolutions on the CPU for the block; nothing changes on a GPU."""
    if device.type != "cpu":
        yield
        return
    threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False  # (not mkldnn.flags(), which also sets TF32 and warns about it)
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = onednn
        torch.set_num_threads(threads)

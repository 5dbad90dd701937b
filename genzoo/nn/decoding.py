"""Running many small operations one after another (sampling a pixel or a character at a time).

Autoregressive sampling is thousands of small operations in sequence (the horizontal stack on a few
columns, one recurrent step). On the CPU each of them is too small to share among threads, and the
hand-offs cost more than they save: on this project's busy 2-core machine a PixelCNN's pixel step took
17x longer on 2 OpenMP threads than on 1. `sequential_cpu` runs a block on one thread and restores
the thread count after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def sequential_cpu(device: torch.device) -> Iterator[None]:
    """One thread on the CPU for the block; nothing changes on a GPU."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)

"""genzoo: train, sample, evaluate and compare deep generative models.

    import genzoo
    run = genzoo.train("dcgan", data="fashion-mnist", steps=2000)
    model = genzoo.load("runs/dcgan")
    images = model.generate(16)          # (16, C, H, W) in [-1, 1]
    scores = genzoo.evaluate("runs/dcgan", metrics=["fid", "pr"])

The names below are imported on first use, so `import genzoo` (and the `genzoo` command's start)
does not import torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

from genzoo.errors import GenzooError

__version__ = "0.1.0"

_LAZY = {
    "load": "genzoo.loading", "list_datasets": "genzoo.api", "list_families": "genzoo.api",
    "list_presets": "genzoo.config", "list_procedures": "genzoo.api", "run_procedure": "genzoo.api",
    "evaluate": "genzoo.metrics", "evaluate_folders": "genzoo.metrics",
    "attack": "genzoo.procedures.attack", "stylize": "genzoo.procedures.stylize",
}
__all__ = ["GenzooError", "__version__", "train", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name == "train":  # the package genzoo.train, which calls genzoo.api.train (see genzoo/train/__init__.py)
        return importlib.import_module("genzoo.train")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'genzoo' has no attribute {name!r}")

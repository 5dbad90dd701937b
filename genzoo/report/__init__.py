"""Pictures and the HTML report of a run folder. The names below are imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"write_report": "genzoo.report.html", "plot_losses": "genzoo.report.plots"}
__all__ = ["plot_losses", "write_report"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'genzoo.report' has no attribute {name!r}")

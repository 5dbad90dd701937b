"""Training: the one loop (`trainer.py`) and its parts (optimizers, rollback, processes, checkpoints, EMA, logs).

This package shares its name with the API function `genzoo.train(...)`: once any module of it is
imported, Python binds `genzoo.train` to this package, so the package itself is callable and calls
`genzoo.api.train` (which trains a preset, family or YAML file into a run folder; see its docstring).
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from genzoo.api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage

"""What genzoo has, as `genzoo list` shows it: families, procedures, presets, datasets, metrics, feature
networks; cached on disk so that `genzoo list` (and `genzoo eval --help`) answer without importing torch.

The registries are filled by importing the packages that register into them, and those import torch
(seconds). The catalogue is read from the live registries once and written to
`$GENZOO_CACHE/catalogue-<key>.json` (default ~/.cache/genzoo), where the key is a hash of the name,
size and modification time of every file of the genzoo package: a changed, added or removed module or
preset gives another key, so the cache is never stale, and a new family still touches only its own
files. An unwritable cache costs time, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from genzoo.io import cache_root

PACKAGE = Path(__file__).parent
SECTIONS = ("families", "procedures", "presets", "datasets", "metrics", "features")


def package_key() -> str:
    """A hash of the genzoo package's source files (relative name, size, mtime) and the Python version."""
    digest = hashlib.sha256(f"{sys.version_info[:2]}".encode())
    stack = [PACKAGE]
    entries = []
    while stack:
        for entry in os.scandir(stack.pop()):
            if entry.is_dir() and entry.name != "__pycache__":
                stack.append(Path(entry.path))
            elif entry.name.endswith((".py", ".yaml")):
                stat = entry.stat()
                entries.append(f"{os.path.relpath(entry.path, PACKAGE)}:{stat.st_size}:{stat.st_mtime_ns}")
    for line in sorted(entries):
        digest.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()[:24]


def catalogue() -> dict[str, list[list[str]]]:
    """The catalogue: from the cache when it matches the package's files, else from the registries (then cached)."""
    path = cache_root() / f"catalogue-{package_key()}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(cached, dict) and set(cached) == set(SECTIONS):
            return cached
    except (OSError, ValueError):
        pass
    answer = live_catalogue()
    try:
        from genzoo.io import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(answer, indent=1) + "\n")
    except Exception:  # noqa: BLE001  (a cache that cannot be written only costs time)
        pass
    return answer


def live_catalogue() -> dict[str, list[list[str]]]:
    """Rows of every section, read from the registries (this imports the families: torch)."""
    from genzoo.config import PRESET_DIR, list_presets
    from genzoo.models import capabilities
    from genzoo.registry import DATASETS, FEATURES, METRICS, MODELS, PROCEDURES

    return {
        "families": [[name, family.modality, family.phase_summary, ", ".join(capabilities(family)),
                      _first_line(sys.modules[family.__module__].__doc__)] for name, family in MODELS.items()],
        "procedures": [[name, _first_line(sys.modules[procedure.__module__].__doc__)]
                       for name, procedure in PROCEDURES.items()],
        "presets": [[name, _first_comment(PRESET_DIR / f"{name}.yaml")] for name in list_presets()],
        "datasets": [[name, _first_line(loader.__doc__ or sys.modules[loader.__module__].__doc__)]
                     for name, loader in DATASETS.items()],
        "metrics": [[name, _first_line(function.__doc__)] for name, function in METRICS.items()],
        "features": [[name, _first_line(loader.__doc__)] for name, loader in FEATURES.items()],
    }


def _first_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else ""


def _first_comment(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""

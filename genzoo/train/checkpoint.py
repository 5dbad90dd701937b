"""The run folder and its plain-data checkpoint files, written atomically.

    runs/<name>/
      config.json          the resolved config that ran (reusable: `genzoo train runs/<name>/config.json`)
      model.safetensors    weights, and EMA weights under `ema.`; metadata: family, data shape, step
      training_state.pt    optimizers, RNG states, step, images seen, data position (tensors and
                           plain Python values only: loaded with `weights_only=True`)
      log.jsonl  events.out.tfevents.*  samples/step-000100.png  losses.png  report.html

Every file is written to a temporary name in the same folder, flushed to disk, then renamed over the
old one, so a crash leaves either the old file or the new one. `training_state.pt` is written last
and records the sha256 of the weights it belongs to, so a pair from two different moments is caught.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from genzoo.errors import CheckpointError, GenzooError


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through `write(temporary_path)`, then rename over `path`; on failure leave `path` as it was."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise GenzooError(f"cannot write {path} ({error.strerror or error}); free space or choose a writable --out.") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class RunFolder:
    """Paths and reads/writes of one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.weights = self.path / "model.safetensors"
        self.state = self.path / "training_state.pt"
        self.log = self.path / "log.jsonl"
        self.samples = self.path / "samples"
        self.losses_plot = self.path / "losses.png"
        self.report = self.path / "report.html"

    def has_checkpoint(self) -> bool:
        return self.weights.exists() and self.state.exists()

    def check_writable(self) -> None:
        """Fail early, creating nothing, when the run folder could not be created or written."""
        existing = self.path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise GenzooError(f"cannot write to the run folder {str(self.path)!r} ({str(existing)!r} is not a writable folder); choose a writable --out.")

    def create(self) -> None:
        try:
            self.samples.mkdir(parents=True, exist_ok=True)
            probe = self.path / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise GenzooError(
                f"cannot write to the run folder {str(self.path)!r} ({error.strerror or error}); choose a writable --out."
            ) from None

    def read_config(self) -> dict[str, Any]:
        if not self.config.is_file():
            raise CheckpointError(f"{str(self.path)!r} is not a genzoo run folder (no config.json); give the folder `genzoo train` wrote.")
        try:
            return json.loads(self.config.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{self.config} is damaged (not JSON); restore it or train again.") from None

    # -- weights

    def save_weights(self, tensors: dict[str, Tensor], metadata: dict[str, Any]) -> str:
        plain = {key: value.detach().to("cpu").contiguous() for key, value in tensors.items()}
        text = {key: json.dumps(value) for key, value in metadata.items()}
        atomic_write(self.weights, lambda tmp: save_file(plain, str(tmp), metadata=text))
        return sha256(self.weights)

    def load_weights(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        if not self.weights.is_file():
            raise CheckpointError(f"{str(self.path)!r} has no model.safetensors; train it first or give another run folder.")
        try:
            tensors = load_file(str(self.weights))
            from safetensors import safe_open

            with safe_open(str(self.weights), "pt") as handle:
                metadata = {key: json.loads(value) for key, value in (handle.metadata() or {}).items()}
        except (SafetensorError, OSError, json.JSONDecodeError, ValueError) as error:
            raise CheckpointError(f"{self.weights} is damaged ({error}); restore it or train again.") from None
        return tensors, metadata

    # -- training state

    def save_state(self, state: dict[str, Any]) -> None:
        atomic_write(self.state, lambda tmp: torch.save(state, tmp))

    def load_state(self) -> dict[str, Any]:
        try:
            state = torch.load(self.state, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001  (any unpickling failure means a bad or unsafe file)
            raise CheckpointError(
                f"{self.state} cannot be loaded safely ({type(error).__name__}); it is damaged or not a genzoo file."
            ) from None
        if state.get("weights_sha256") != sha256(self.weights):
            raise CheckpointError(
                f"{self.state} belongs to other weights than {self.weights.name} (the run stopped mid-save); "
                "restore both from a backup or start a new run."
            )
        return state

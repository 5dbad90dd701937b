"""The run folder and its plain-data checkpoint files, written atomically and verified on reading.

    runs/<name>/
      config.json          the resolved config that ran (reusable: `genzoo train runs/<name>/config.json`)
      model.safetensors    weights, and EMA weights under `ema.`; metadata: family, data shape, step,
                           the sha256 of its own tensors and the sha256 of the training_state.pt it belongs to
      training_state.pt    optimizers, RNG states, step, data position (tensors and plain Python values
                           only: loaded with `weights_only=True`, so loading never runs code)
      model.previous.safetensors  training_state.previous.pt   the checkpoint before, kept as a fallback
      log.jsonl  events.out.tfevents.*  samples/step-000100.png  losses.png  report.html

A checkpoint is a weights file and the state file whose sha256 it records. Saving writes both to
temporary files (flushed to disk), moves the newest intact checkpoint to the `previous` names, then
renames the new files into place, one at a time. A crash at any moment therefore leaves an intact
checkpoint, the old or the new one: reading looks at every weights/state combination and takes the
newest whose checksums hold, with a note when that is not the latest. A failed write (a full disk)
removes its temporary files and leaves the checkpoints as they were.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from genzoo.errors import CheckpointError, GenzooError
from genzoo.io import flush, flush_folder, print_note, sha256, temporary_name, tensors_sha256


class Checkpoint(NamedTuple):
    tensors: dict[str, Tensor]
    metadata: dict[str, Any]  # family, data_info, step, ...
    state: dict[str, Any]  # training_state.pt
    weights_path: Path
    state_path: Path


class RunFolder:
    """Paths and reads/writes of one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.weights = self.path / "model.safetensors"
        self.state = self.path / "training_state.pt"
        self.previous_weights = self.path / "model.previous.safetensors"
        self.previous_state = self.path / "training_state.previous.pt"
        self.log = self.path / "log.jsonl"
        self.samples = self.path / "samples"
        self.losses_plot = self.path / "losses.png"
        self.report = self.path / "report.html"

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def saved_nothing(self) -> bool:
        """Whether no checkpoint file of any kind is there yet (a run before its first save, not a damaged one)."""
        return not any(p.exists() for p in (self.weights, self.previous_weights, self.state, self.previous_state))

    def first_checkpoint_step(self) -> int | None:
        """The step the run's first checkpoint is written at (train.checkpoint_every, or the last step), from config.json."""
        try:
            train = json.loads(self.config.read_text(encoding="utf-8")).get("train", {})
            return min(int(train.get("checkpoint_every", 1000)), int(train.get("steps", 2000)))
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def not_saved_yet(self) -> CheckpointError:
        """The error for a run that has not written its first checkpoint: when that comes, not "damaged"."""
        first = self.first_checkpoint_step()
        return CheckpointError(f"{str(self.path)!r} has no checkpoint yet: the first is written "
                               f"{'' if first is None else f'at step {first} '}(or when training stops); wait for it, "
                               f"or start a stopped run again with `genzoo resume {self.path}`.")

    def saved_step(self) -> int | None:
        """The step of the newest intact checkpoint (weights and the state they record); None when there is none."""
        newest = self._newest_intact()
        return None if newest is None else int(self._step_of(newest[0]))

    def has_checkpoint(self) -> bool:
        """Whether any checkpoint file is there (intact or not: reading decides)."""
        return self.weights.exists() or self.previous_weights.exists()

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

    def remove_temporaries(self) -> None:
        """Delete temporary files a killed process left behind (never those of this process)."""
        own = f".tmp-{os.getpid()}"
        for folder in (self.path, self.samples):
            for path in folder.glob(".*.tmp-*"):
                if not path.name.endswith(own):
                    path.unlink(missing_ok=True)

    def read_config(self) -> dict[str, Any]:
        if not self.config.is_file():
            raise CheckpointError(f"{str(self.path)!r} is not a genzoo run folder (no config.json); give the folder `genzoo train` wrote.")
        try:
            return json.loads(self.config.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{self.config} is damaged (not JSON); restore it or train again.") from None

    def check_for(self, config: Any, resume: bool, note: Callable[[str], None], is_main: bool = True) -> bool:
        """Check the folder for a run of `config` (a RunConfig) before anything is built, reading only;
        return whether it has a checkpoint to continue from."""
        from genzoo.config import build_config

        run = self
        if resume:
            if not run.has_checkpoint() and not run.config.exists():
                raise CheckpointError(f"{str(run.path)!r} holds no checkpoint to resume; train without --resume first.")
            saved = build_config(run.read_config()) if run.config.exists() else None
            if saved is not None and saved.family != config.family:
                raise CheckpointError(f"{str(run.path)!r} is a {saved.family!r} run and cannot resume as "
                                      f"{config.family!r}; give a --out folder of the same family.")
            shape = (config.data.image_size, config.data.pad_to)
            if saved is not None and (saved.model != config.model or (saved.data.image_size, saved.data.pad_to) != shape):
                raise CheckpointError(f"the model settings differ from those {str(run.path)!r} was trained with; resume "
                                      "with the saved config (`genzoo resume RUN`) or train into a new --out.")
            if not run.has_checkpoint():  # stopped before its first checkpoint: nothing to lose
                note(f"{str(run.path)!r} has no checkpoint yet (it stopped before the first); starting from step 0.")
        elif run.has_checkpoint() or run.config.exists():
            raise CheckpointError(f"{str(run.path)!r} already holds a run; pass --resume to continue it or choose another --out.")
        if is_main:
            run.check_writable()  # the folder itself is created once everything else checked out
        return resume and run.has_checkpoint()

    # -- saving

    def save_checkpoint(self, tensors: dict[str, Tensor], metadata: dict[str, Any], state: dict[str, Any]) -> None:
        """Write a new checkpoint; the newest intact one before it becomes the `previous` one."""
        plain = {key: value.detach().to("cpu").contiguous() for key, value in tensors.items()}
        new_state, new_weights = temporary_name(self.state), temporary_name(self.weights)
        try:
            torch.save(state, new_state)
            flush(new_state)
            metadata = {**metadata, "tensors_sha256": tensors_sha256(plain), "state_sha256": sha256(new_state)}
            save_file(plain, str(new_weights), metadata={key: json.dumps(value) for key, value in metadata.items()})
            flush(new_weights)
            kept = self._newest_intact()
            if kept is not None:  # one rename at a time: every moment in between leaves an intact pair
                if kept[1] != self.previous_state:
                    os.replace(kept[1], self.previous_state)
                if kept[0] != self.previous_weights:
                    os.replace(kept[0], self.previous_weights)
            os.replace(new_state, self.state)
            os.replace(new_weights, self.weights)
            flush_folder(self.path)
        except OSError as error:
            new_state.unlink(missing_ok=True)
            new_weights.unlink(missing_ok=True)
            raise GenzooError(
                f"cannot write the checkpoint of step {metadata.get('step')} to {str(self.path)!r} "
                f"({error.strerror or error}); the previous checkpoint is kept, so free some space and "
                f"continue with `genzoo resume {self.path}`."
            ) from None
        except BaseException:
            new_state.unlink(missing_ok=True)
            new_weights.unlink(missing_ok=True)
            raise

    # -- reading

    def read_weights(self, path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The tensors and metadata of one weights file, after checking its checksum."""
        if not path.is_file():
            raise CheckpointError(f"{path.name} is missing")
        try:
            with safe_open(str(path), "pt") as handle:
                metadata = {key: json.loads(value) for key, value in (handle.metadata() or {}).items()}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, json.JSONDecodeError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"{path.name} is damaged ({str(error).strip().rstrip('.')})") from None
        if "tensors_sha256" in metadata and tensors_sha256(tensors) != metadata["tensors_sha256"]:
            raise CheckpointError(f"{path.name} is damaged (its checksum does not match)")
        return tensors, metadata

    def _step_of(self, path: Path) -> float:
        try:
            with safe_open(str(path), "pt") as handle:
                return int(json.loads((handle.metadata() or {}).get("step", "-1")))
        except (SafetensorError, OSError, json.JSONDecodeError, ValueError, TypeError):
            return math.inf  # unreadable: tried first, so that what is wrong with it gets said

    def _candidates(self) -> list[Path]:
        """Weights files present, newest step first (the latest name first on a tie)."""
        present = [p for p in (self.weights, self.previous_weights) if p.is_file()]
        return sorted(present, key=lambda p: -self._step_of(p))

    def _matching_state(self, metadata: dict[str, Any]) -> Path | None:
        for path in (self.state, self.previous_state):
            if path.is_file() and metadata.get("state_sha256") == sha256(path):
                return path
        return None

    def _newest_intact(self) -> tuple[Path, Path] | None:
        for weights in self._candidates():
            try:
                _, metadata = self.read_weights(weights)
            except CheckpointError:
                continue
            state = self._matching_state(metadata)
            if state is not None:
                return weights, state
        return None

    def load_weights(self, note: Callable[[str], None] | None = print_note) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The newest intact weights: model.safetensors, or the previous ones (with a note) when it is damaged."""
        if self.saved_nothing() and self.config.is_file():
            raise self.not_saved_yet()
        problems = []
        for path in self._candidates() or [self.weights]:
            try:
                tensors, metadata = self.read_weights(path)
            except CheckpointError as error:
                problems.append(str(error))
                continue
            if problems and note is not None:
                note(f"{'; '.join(problems)}: using {path.name} (step {metadata.get('step')}) instead.")
            return tensors, metadata
        raise CheckpointError(f"{str(self.path)!r} has no intact weights ({'; '.join(problems)}); restore them or train again.")

    def load_checkpoint(self, note: Callable[[str], None] | None = print_note, before_step: int | None = None) -> Checkpoint:
        """The newest intact checkpoint (weights and their training state), with a note when it is not the latest;
        with `before_step`, the newest one of an earlier step (or, when there is none, the newest).

        The state file is unpickled with `weights_only=True` and only once its sha256 matches the one the
        weights record: a file that would run code is refused, never executed.
        """
        if self.saved_nothing() and self.config.is_file():
            raise self.not_saved_yet()
        problems = []
        candidates = self._candidates()
        if before_step is not None:
            earlier = [p for p in candidates if self._step_of(p) < before_step]
            candidates = earlier + [p for p in candidates if p not in earlier]
        for path in candidates:
            try:
                tensors, metadata = self.read_weights(path)
            except CheckpointError as error:
                problems.append(str(error))
                continue
            state_path = self._matching_state(metadata)
            if state_path is None:
                problems.append(f"{path.name} has no matching training_state.pt (it is damaged or from another save)")
                continue
            try:
                state = torch.load(state_path, map_location="cpu", weights_only=True)
            except Exception as error:  # noqa: BLE001  (any unpickling failure means a bad or unsafe file)
                problems.append(f"{state_path.name} cannot be loaded safely ({type(error).__name__})")
                continue
            if problems and note is not None:
                note(f"{'; '.join(problems)}: resuming from the previous checkpoint (step {metadata.get('step')}).")
            return Checkpoint(tensors, metadata, state, path, state_path)
        reason = "; ".join(problems) or "no model.safetensors"
        raise CheckpointError(f"{str(self.path)!r} has no intact checkpoint to resume ({reason}); train into a new --out.")

    def make_latest(self, checkpoint: Checkpoint) -> None:
        """Give `checkpoint` the latest names, dropping a newer one (of a stretch of training that was abandoned).

        The state moves first: in between, the checkpoint is intact as the moved state and the unmoved weights.
        """
        if checkpoint.state_path != self.state:
            os.replace(checkpoint.state_path, self.state)
        if checkpoint.weights_path != self.weights:
            os.replace(checkpoint.weights_path, self.weights)
        flush_folder(self.path)

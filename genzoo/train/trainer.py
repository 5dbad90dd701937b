"""The one training loop. It knows `GenerativeModel`'s interface and the `Dataset` protocol, and never
names a family, a batch key or a modality.

Per step: the model's `schedule(step, total)` gives this step's learning-rate factors (and values such
as a fade-in alpha); every phase of the family runs in order (`repeats` times, on steps divisible by
`every`): the phase's parameter group alone requires gradients, `forward(phase, batch)["total"]` is
back-propagated, gradients are averaged over processes, and the group's optimizer steps. Losses are
summed on the device and read every `log_every` steps, the only host synchronisation in the loop.
Sample grids, evaluations and the report are callbacks it is handed (`genzoo.train.callbacks`).
Checkpoints are written atomically and verified on reading (`genzoo.train.checkpoint`); a NaN is
caught before anything non-finite is saved (`genzoo.train.rollback`). One writer per run folder: an
OS-level lock that the kernel releases when the process dies.
"""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor

from genzoo.config import RunConfig
from genzoo.data import BatchStream, build_dataset
from genzoo.data.base import KEY_SOURCES
from genzoo.errors import CheckpointError, DataError, GenzooError
from genzoo.io import UNWRITABLE, FolderLock, atomic_write_text
from genzoo.memory import check_batch_fits, check_model_fits
from genzoo.models.base import GenerativeModel, Scheduled
from genzoo.registry import MODELS
from genzoo.train.callbacks import Callback
from genzoo.train.checkpoint import Checkpoint, RunFolder
from genzoo.train.ema import EMA
from genzoo.train.log import TrainingLog, format_record, log_interval, progress_bar, progress_losses, read_log
from genzoo.train.optim import Optimizers, run_schedule
from genzoo.train.processes import Processes
from genzoo.train.rollback import NonFinite, TrainingDiverged, check_finite, roll_back

console = Console(stderr=True)
__all__ = ["NonFinite", "Trainer", "TrainingDiverged"]


class Trainer:
    def __init__(self, config: RunConfig, out: str | Path, resume: bool = False, progress: bool = True,
                 callbacks: list[Callback] | tuple[Callback, ...] = ()) -> None:
        self.config, self.run, self.show_progress, self.callbacks = config, RunFolder(out), progress, list(callbacks)
        train = config.train
        self.processes = Processes(cpu=train.device == "cpu" or not self._cuda_available())
        self.device, self.is_main = self.processes.device, self.processes.is_main
        self.amp_dtype = torch.bfloat16 if (train.mixed_precision == "bf16" or (
            train.mixed_precision == "auto" and self.device.type == "cuda")) else None
        if train.device == "cuda" and not self._cuda_available():
            raise GenzooError("train.device=cuda but no CUDA GPU is visible; use train.device=auto or cpu.")
        self.resume = self.run.check_for(config, resume, self.note, self.is_main)  # whether there is a checkpoint to continue
        self.lock = FolderLock(self.run.path)
        if self.is_main and self.run.path.exists():  # before anything of the run is read for resuming or changed
            self.lock.acquire("resume it" if resume else "train into it")
        try:
            self._build(resume)
        except BaseException:
            self.lock.release()
            raise

    def _build(self, resume: bool) -> None:
        train = self.config.train
        torch.manual_seed(train.seed)  # the same initial weights on every process
        check_batch_fits(train.batch_size, self.config.data.channels, self.config.data.image_size, self.device)
        self.data = build_dataset(self.config.data)
        family = MODELS.get(self.config.family)
        self._check_keys(family.requires)  # what every model of the family needs, before it is sized or built
        check_model_fits(family, self.config.model, self.data.info, train.batch_size, self.device)
        self.model: GenerativeModel = family(self.config.model, self.data.info).to(self.device)
        self._check_keys(self.model.requires)  # and what this one needs (e.g. labels when conditional)
        self.channels_last = train.channels_last if train.channels_last is not None else self.device.type == "cuda"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.device.type == "cuda":
            self.data.to(self.device)  # small datasets live on the GPU: no loader in the step loop
        self.optimizers = Optimizers(self.model, train, fused=self.device.type == "cuda")
        self.stream = BatchStream(self.data, train.batch_size, train.seed, self.processes.rank, self.processes.count)
        self.step, self.rollbacks = 0, 0
        self.rolled_back_to: int | None = None  # the step of the last rollback, until the next checkpoint
        self.scheduled = Scheduled()
        if not self.resume:
            self.processes.broadcast(list(self.model.state_dict().values()))
        self.ema = EMA(self.model, train.ema_decay, self.model.ema_modules, train.ema_warmup) if train.ema_decay is not None else None
        if self.resume:  # a resumed run continues with the random state it saved
            self.restore(self.run.load_checkpoint(note=self.note))
        else:  # each process its own noise (z, t, dropout), unless asked to share it
            torch.manual_seed(train.seed + 7919 * (1 + (self.processes.rank if train.process_noise == "distinct" else 0)))
        for note in self.data.notes:  # once every check passed: a refused run prints its one error line only
            self.note(note)
        if self.resume and self.is_main:
            console.print(f"resuming {str(self.run.path)!r} from step {self.step} of {train.steps}", highlight=False)
        if resume:  # drop what the interrupted run logged after its checkpoint
            self.drop_log_after(self.step)
        preview = torch.arange(min(train.num_preview, len(self.data)), device=self.data.device)
        self.preview_batch = self._layout(self.data.batch(preview))
        self.log: TrainingLog | None = None
        self._phase_runs: dict[str, int] = {}  # phase runs since the last log record
        self._stop_requested = 0  # the signal number that asked to stop

    # ------------------------------------------------------------------------- setup

    @staticmethod
    def _cuda_available() -> bool:
        return torch.cuda.is_available()

    def note(self, message: str) -> None:
        if self.is_main:
            console.print(f"[yellow]note:[/] {message}", soft_wrap=True, highlight=False)

    def _check_keys(self, requires: tuple[str, ...]) -> None:
        missing = set(requires) - set(self.data.keys)
        if missing:
            raise DataError(
                f"this {self.config.family} model needs batch keys {sorted(missing)} that dataset "
                f"{self.config.data.name!r} does not provide (it has {list(self.data.keys)}); use "
                + "; ".join(dict.fromkeys(KEY_SOURCES.get(key, f"a dataset with {key!r}") for key in sorted(missing))) + "."
            )

    def _layout(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The batch in the layout the convolutions run in (channels_last on CUDA): every 4-D float tensor."""
        if not self.channels_last:
            return batch
        return {key: value.contiguous(memory_format=torch.channels_last) if value.dim() == 4 and value.is_floating_point()
                else value for key, value in batch.items()}

    @property
    def sampling_model(self) -> GenerativeModel:
        """The model samples and scores are drawn from: the EMA weights when the run keeps them."""
        return self.ema.model if self.ema is not None else self.model

    # ------------------------------------------------------------------------- checkpoints

    def _weights(self) -> dict[str, Tensor]:
        tensors = dict(self.model.state_dict())
        if self.ema is not None:
            tensors.update({f"ema.{key}": value for key, value in self.ema.state_dict().items()})
        return tensors

    def save_checkpoint(self, sums: dict[str, Tensor] | None = None) -> None:
        """Write a checkpoint (weights, EMA, optimizers, step, data position, every process's random state).
        The weights and the losses not yet logged (`sums`) are checked first: a NaN raises `NonFinite`."""
        weights = self._weights()
        check_finite({**(sums or {}), **weights}, self.processes)
        random_state = {"rng_cpu": self.processes.gather(torch.get_rng_state()),
                        "rng_cuda": self.processes.gather(torch.cuda.get_rng_state() if self.device.type == "cuda" else None)}
        if self.is_main:
            metadata = {"family": self.config.family, "data_info": self.data.info.as_dict(), "step": self.step}
            self.run.save_checkpoint(weights, metadata, {"step": self.step, "data_position": self.stream.position,
                                                         "optimizers": self.optimizers.state_dict(),
                                                         "rollbacks": self.rollbacks, **random_state})
        self.rolled_back_to = None
        self.processes.barrier()

    def restore(self, checkpoint: Checkpoint) -> None:
        """Put back the weights, EMA, optimizers, step, data position, rollback count and random state."""
        tensors, state = checkpoint.tensors, checkpoint.state
        weights = {k: v for k, v in tensors.items() if not k.startswith("ema.")}
        try:
            self.model.load_state_dict(weights)
            if self.ema is not None:  # a run that had no EMA before starts its average at the weights
                self.ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")} or weights)
            self.optimizers.load_state_dict(state["optimizers"])
        except (RuntimeError, KeyError, ValueError):
            raise CheckpointError(f"the checkpoint in {str(self.run.path)!r} does not fit this model or optimizer; "
                                  "train into a new --out.") from None
        self.step, self.stream.position = int(state["step"]), int(state["data_position"])
        self.rollbacks = int(state.get("rollbacks", 0))
        rank = self.processes.rank
        if rank < len(state["rng_cpu"]):
            torch.set_rng_state(state["rng_cpu"][rank])
        else:  # more processes than the run had: a fresh stream for this one
            torch.manual_seed(self.config.train.seed + 7919 * (rank + 1) + self.step)
        if self.device.type == "cuda" and rank < len(state["rng_cuda"]) and state["rng_cuda"][rank] is not None:
            torch.cuda.set_rng_state(state["rng_cuda"][rank])

    def drop_log_after(self, step: int) -> None:
        """Keep the log lines up to `step`: those of a stopped or abandoned stretch of training go."""
        if self.is_main:
            for path in (self.run.log, self.run.path / "metrics.jsonl"):
                if path.exists():
                    kept = [r for r in read_log(path) if (r.get("step") or 0) <= step]
                    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))

    # ------------------------------------------------------------------------- the loop

    def _set_trainable(self, group: str) -> None:
        if len(self.optimizers.params) > 1:
            for name, params in self.optimizers.params.items():
                for param in params:
                    param.requires_grad_(name == group)

    def train_step(self, sums: dict[str, Tensor]) -> None:
        """Advance one step: every phase of the family once (or `repeats` times). Adds losses to `sums`."""
        train = self.config.train
        self.scheduled = self.model.schedule(self.step, train.steps)
        if self.ema is not None:  # the average samples with the same settings (e.g. a growing GAN's resolution)
            self.ema.model.schedule(self.step, train.steps)
        factor = train.rollback_lr_factor**self.rollbacks * run_schedule(train.lr_schedule, self.step, train.steps, train.warmup_steps)
        self.optimizers.set_rates(factor, self.scheduled)
        self.step += 1
        self.model.train()
        batch = None
        for phase in self.model.phases:
            if self.step % phase.every:
                continue
            self._set_trainable(phase.param_group)
            optimizer = self.optimizers[phase.param_group]
            for _ in range(phase.repeats):
                if phase.fresh_batch or batch is None:
                    batch = self._layout(self.stream.next())
                with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
                    losses = self.model(phase.name, batch)
                optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                self.processes.average_gradients(self.optimizers.params[phase.param_group])
                optimizer.step()
                self.model.after_step(phase.name)
                for key, value in losses.items():
                    name = f"{phase.name}/{key}"
                    sums[name] = sums[name] + value.detach().float() if name in sums else value.detach().float()
                self._phase_runs[phase.name] = self._phase_runs.get(phase.name, 0) + 1
        if self.ema is not None:
            self.ema.update(self.step)

    def fit(self) -> RunFolder:
        train = self.config.train
        deterministic = torch.are_deterministic_algorithms_enabled()  # restored when the run ends
        torch.use_deterministic_algorithms(train.deterministic or deterministic)
        handled = (signal.SIGINT, signal.SIGTERM) if _in_main_thread() else ()
        previous = {signum: signal.signal(signum, self.request_stop) for signum in handled}
        try:
            for callback in self.callbacks:  # checks first: a run they refuse writes nothing
                callback.on_start(self)
            self._prepare_folder()
            self.log = TrainingLog(self.run.path, enabled=self.is_main)
            for note in self.log.notes:
                self.note(note)
            self._loop()
            if self.is_main:
                for callback in self.callbacks:
                    callback.on_end(self)
        except OSError as error:  # a log line or sample grid that cannot be written: the checkpoints stay as they are
            if error.errno not in UNWRITABLE:
                raise
            raise GenzooError(f"cannot write to the run folder {str(self.run.path)!r} ({error.strerror}); the last checkpoint "
                              f"is kept, so free some space and continue with `genzoo resume {self.run.path}`.") from None
        finally:
            if self.log is not None:
                self.log.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            torch.use_deterministic_algorithms(deterministic)
            self.lock.release()
        if self._stop_requested:  # the caller stops too: the run is saved, not finished
            raise KeyboardInterrupt if self._stop_requested == signal.SIGINT else SystemExit(128 + self._stop_requested)
        return self.run

    def _prepare_folder(self) -> None:
        """Create the run folder (locked: one writer) and write the resolved config."""
        if not self.is_main:
            return
        self.run.create()
        if self.lock.held is False:  # a new folder: lock it, then make sure no other process started a run there meanwhile
            self.lock.acquire("train into it")
            if not self.resume and (self.run.config.exists() or self.run.has_checkpoint()):
                raise CheckpointError(f"{str(self.run.path)!r} already holds a run; pass --resume to continue it or "
                                      "choose another --out.")
        self.run.remove_temporaries()
        atomic_write_text(self.run.config, self.config.to_json())

    def _loop(self) -> None:
        train = self.config.train
        progress = progress_bar(console, enabled=self.show_progress and self.is_main and console.is_terminal)
        task = progress.add_task(self.config.family, total=train.steps, completed=self.step, speed="", losses="")
        sums: dict[str, Tensor] = {}
        log_every = log_interval(train)  # at least 20 records in a short run
        last_time, last_position = time.perf_counter(), self.stream.position
        with progress:
            while self.step < train.steps and not self._stop_requested:
                try:
                    self.train_step(sums)
                    progress.advance(task)
                    final = self.step == train.steps
                    if self.step % log_every == 0 or final:
                        now = time.perf_counter()
                        images = (self.stream.position - last_position) * self.stream.batch_size
                        record = self._log_record(sums, images / max(now - last_time, 1e-9))
                        self.log.write(record)
                        progress.update(task, speed=f"{record['images_per_s']:,.0f} img/s", losses=progress_losses(record))
                        if not console.is_terminal and self.is_main and self.show_progress:
                            console.print(format_record(record, train.steps), soft_wrap=True, highlight=False)
                        sums, last_time, last_position = {}, now, self.stream.position
                    if self.is_main:
                        try:
                            for callback in self.callbacks:
                                if callback.every and (self.step % callback.every == 0 or final):
                                    callback.on_step(self)
                        except Exception:
                            self._keep_steps(sums)
                            raise
                    if self.step % train.checkpoint_every == 0 or final:
                        self.save_checkpoint(sums)
                except NonFinite as error:  # within the logging interval, before anything is saved
                    roll_back(self, error, console)
                    sums, self._phase_runs, last_time, last_position = {}, {}, time.perf_counter(), self.stream.position
                    progress.update(task, completed=self.step)
        if self._stop_requested:
            try:
                self.save_checkpoint(sums)
            except NonFinite as error:
                roll_back(self, error, console)  # the run stops either way; a rollback just keeps the last checkpoint
            if self.is_main:
                console.print(f"stopped at step {self.step}; checkpoint saved. Continue with: genzoo resume {self.run.path}")

    def _keep_steps(self, sums: dict[str, Tensor]) -> None:
        """A callback (an evaluation, a preview) failed after step N: keep the steps trained since the last
        checkpoint by saving one, where that needs no other process, then let the error through."""
        if self.processes.count != 1:  # a checkpoint is collective: the other processes are not here to join it
            return
        try:
            self.save_checkpoint(sums)
        except Exception:  # noqa: BLE001  (the callback's error is the one to report; the last checkpoint stays)
            return
        console.print(f"checkpoint saved at step {self.step}; after fixing the cause, continue with: "
                      f"genzoo resume {self.run.path}", soft_wrap=True, highlight=False)

    def request_stop(self, signum: int = signal.SIGTERM, frame: Any = None) -> None:
        """Stop after the current step, saving a checkpoint (the SIGINT and SIGTERM handler)."""
        if self._stop_requested:  # a second signal stops at once
            raise KeyboardInterrupt
        self._stop_requested = signum

    def _log_record(self, sums: dict[str, Tensor], images_per_s: float) -> dict[str, Any]:
        """The mean of each loss over the runs of its phase since the last record; raises `NonFinite` (on
        every process) when one is not finite."""
        names = list(sums)
        values = torch.stack([sums[n] for n in names]).cpu().tolist() if names else []  # the one host sync
        bad = [name for name, total in zip(names, values) if not math.isfinite(total)]
        # the processes decide together, or one would wait for the others forever
        if self.processes.any_true(torch.tensor([len(bad)], dtype=torch.int32))[0]:
            raise NonFinite(bad[0] if bad else "a loss on another process")
        record: dict[str, Any] = {"step": self.step, "images": self.stream.position * self.stream.batch_size,
                                  "images_per_s": images_per_s, "time": time.time()}
        if self.rollbacks:
            record["rollbacks"] = self.rollbacks
        for name, total in zip(names, values):
            record[name] = total / self._phase_runs.get(name.split("/")[0], 1)
        record.update({f"schedule/{name}": value for name, value in self.scheduled.values.items()})
        self._phase_runs = {}
        return record


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()

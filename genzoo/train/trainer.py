"""The one training loop. It knows `GenerativeModel`'s interface and never names a family.

Per step, every phase of the family runs in order (`repeats` times, on steps divisible by `every`):
the phase's parameter group alone requires gradients, `forward(phase, batch)["total"]` is
back-propagated and the group's optimizer steps. Losses are summed on the device and read every
`log_every` steps, the only host synchronisation in the loop. Processes and devices come from
Accelerate (`accelerate launch -m genzoo train ...` for several); with several processes each
phase's gradients are averaged across processes before its optimizer steps, which stays correct
however the phases toggle `requires_grad` (a single DDP wrapper would not).

Faults: a NaN or infinite loss is caught when the losses are read (every `log_every` steps) or,
at the latest, before a checkpoint is written, since the weights and pending losses are checked
first; nothing non-finite is ever saved. With `train.on_divergence=rollback` the run goes back to
the last good checkpoint (weights, EMA, optimizers, step, data position, random state), multiplies
the learning rates by `train.rollback_lr_factor` and goes on, at most `train.max_rollbacks` times;
diverging again before a new checkpoint goes one checkpoint further back. With `stop` it stops with
a message. Checkpoints are written atomically and verified on reading (`genzoo.train.checkpoint`).
"""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from accelerate import PartialState
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor

from genzoo.config import RunConfig, build_config
from genzoo.data import BatchStream, build_dataset
from genzoo.data.base import KEY_SOURCES
from genzoo.errors import CheckpointError, DataError, GenzooError
from genzoo.models.base import GenerativeModel, preview_images
from genzoo.report.grids import save_grid
from genzoo.registry import MODELS
from genzoo.train.checkpoint import UNWRITABLE, Checkpoint, RunFolder, atomic_write_text
from genzoo.train.ema import EMA
from genzoo.train.log import TrainingLog, read_log

console = Console(stderr=True)

OPTIMIZERS = {
    "adam": lambda params, t, fused: torch.optim.Adam(params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay, fused=fused),
    "adamw": lambda params, t, fused: torch.optim.AdamW(params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay, fused=fused),
    "rmsprop": lambda params, t, fused: torch.optim.RMSprop(params, lr=t.lr, weight_decay=t.weight_decay),
    "sgd": lambda params, t, fused: torch.optim.SGD(params, lr=t.lr, weight_decay=t.weight_decay),
}


class TrainingDiverged(GenzooError):
    """A loss became NaN or infinite; nothing non-finite was saved."""


class NonFinite(Exception):
    """Raised inside the loop when a loss or a weight is NaN or infinite (every process alike)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class Trainer:
    def __init__(self, config: RunConfig, out: str | Path, resume: bool = False, progress: bool = True) -> None:
        self.config, self.run, self.show_progress = config, RunFolder(out), progress
        self.state = PartialState(cpu=self._want_cpu())
        self.device = self.state.device
        self.is_main = self.state.is_main_process
        train = config.train
        self.amp_dtype = torch.bfloat16 if (train.mixed_precision == "bf16" or (
            train.mixed_precision == "auto" and self.device.type == "cuda")) else None
        self.resume = self._check_run_folder(resume)  # whether a checkpoint is there to continue from

        torch.manual_seed(train.seed)  # the same initial weights on every process
        if train.deterministic:
            torch.use_deterministic_algorithms(True)
        self.data = build_dataset(config.data)
        if self.is_main:
            for note in self.data.notes:
                console.print(f"[yellow]note:[/] {note}")
        self.model: GenerativeModel = MODELS.get(config.family)(config.model, self.data.info).to(self.device)
        missing = set(self.model.requires) - set(self.data.keys)
        if missing:
            raise DataError(
                f"this {config.family} model needs batch keys {sorted(missing)} that dataset {config.data.name!r} "
                f"does not provide (it has {list(self.data.keys)}); use "
                + "; ".join(dict.fromkeys(KEY_SOURCES.get(key, f"a dataset with {key!r}") for key in sorted(missing))) + "."
            )
        self.channels_last = self.device.type == "cuda"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.data.to(self.device)  # small datasets live on the GPU: no loader in the step loop
        if train.eval_every:  # unknown metrics or a missing feature network fail now, not at step N
            from genzoo.metrics.features import load_features
            from genzoo.registry import METRICS

            for name in train.eval_metrics:
                METRICS.get(name)
            self._eval_network, self._eval_reference = load_features(train.eval_extractor), None
        self.groups = self.model.param_groups()
        fused = self.device.type == "cuda"
        self.optimizers = {name: OPTIMIZERS[train.optimizer](params, train, fused) for name, params in self.groups.items()}
        self.stream = BatchStream(self.data, train.batch_size, train.seed, self.state.process_index, self.state.num_processes)
        self.step, self.rollbacks = 0, 0
        self._rolled_back_to: int | None = None  # the step of the last rollback, until the next checkpoint
        if self.state.num_processes > 1 and not self.resume:
            for tensor in self.model.state_dict().values():
                dist.broadcast(tensor, 0)
        self.ema = EMA(self.model, train.ema_decay, self.model.ema_modules) if train.ema_decay is not None else None
        if self.resume:  # a resumed run continues with the random state it saved
            self._restore(self.run.load_checkpoint(note=self._note))
        else:
            torch.manual_seed(train.seed + 7919 * (self.state.process_index + 1))
        if resume:  # drop what the interrupted run logged after its checkpoint
            self._drop_log_after(self.step)
        self.preview_batch = self.data.batch(torch.arange(min(train.num_preview, len(self.data)), device=self.data.images.device))
        self._stop_requested = 0  # the signal number that asked to stop

    # ------------------------------------------------------------------------- setup

    def _want_cpu(self) -> bool:
        choice = self.config.train.device
        if choice == "cuda" and not torch.cuda.is_available():
            raise GenzooError("train.device=cuda but no CUDA GPU is visible; use train.device=auto or cpu.")
        return choice == "cpu" or not torch.cuda.is_available()

    def _note(self, message: str) -> None:
        if self.is_main:
            console.print(f"[yellow]note:[/] {message}", soft_wrap=True, highlight=False)

    def _check_run_folder(self, resume: bool) -> bool:
        """Check the run folder before anything is built; return whether it has a checkpoint to continue from."""
        run = self.run
        if resume:
            if not run.has_checkpoint() and not run.config.exists():
                raise CheckpointError(f"{str(run.path)!r} holds no checkpoint to resume; train without --resume first.")
            saved = build_config(run.read_config()) if run.config.exists() else None
            if saved is not None and saved.family != self.config.family:
                raise CheckpointError(
                    f"{str(run.path)!r} is a {saved.family!r} run and cannot resume as {self.config.family!r}; "
                    "give a --out folder of the same family."
                )
            if saved is not None and (saved.model != self.config.model or saved.data.image_size != self.config.data.image_size):
                raise CheckpointError(
                    f"the model settings differ from those {str(run.path)!r} was trained with; resume with the saved "
                    "config (`genzoo resume RUN`) or train into a new --out."
                )
            if not run.has_checkpoint():  # stopped before its first checkpoint: nothing to lose
                self._note(f"{str(run.path)!r} has no checkpoint yet (it stopped before the first); starting from step 0.")
        elif run.has_checkpoint() or run.config.exists():
            raise CheckpointError(
                f"{str(run.path)!r} already holds a run; pass --resume to continue it or choose another --out."
            )
        if self.is_main:
            run.check_writable()  # the folder itself is created once everything else checked out
        return resume and run.has_checkpoint()

    # ------------------------------------------------------------------------- checkpoints

    def _weights(self) -> dict[str, Tensor]:
        tensors = dict(self.model.state_dict())
        if self.ema is not None:
            tensors.update({f"ema.{key}": value for key, value in self.ema.state_dict().items()})
        return tensors

    def save_checkpoint(self, sums: dict[str, Tensor] | None = None) -> None:
        """Write a checkpoint (weights, EMA, optimizers, step, data position, every process's random state).

        Nothing non-finite is ever written: the weights and the losses not yet logged (`sums`) are
        checked first, and a NaN or infinity raises `NonFinite` instead.
        """
        weights = self._weights()
        self._check_finite({**(sums or {}), **weights})
        random_state = {"rng_cpu": self._gather(torch.get_rng_state()),
                        "rng_cuda": self._gather(torch.cuda.get_rng_state() if self.device.type == "cuda" else None)}
        if self.is_main:
            metadata = {"family": self.config.family, "data_info": self.data.info.__dict__, "step": self.step}
            self.run.save_checkpoint(weights, metadata, {
                "step": self.step,
                "data_position": self.stream.position,
                "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
                "rollbacks": self.rollbacks,
                "lr": self.config.train.lr,  # the configured rate; the optimizers hold it times any rollback factors
                **random_state,
            })
        self._rolled_back_to = None
        self._barrier()

    def _barrier(self) -> None:
        if self.state.num_processes > 1:
            dist.barrier()

    def _gather(self, value: Any) -> list[Any]:
        """`value` from every process, in process order."""
        if self.state.num_processes == 1:
            return [value]
        values: list[Any] = [None] * self.state.num_processes
        dist.all_gather_object(values, value)
        return values

    def _restore(self, checkpoint: Checkpoint, rollback: bool = False) -> None:
        """Put back the weights, EMA, optimizers, step, data position and random state the checkpoint saved.

        A rollback keeps its own count and lowers every learning rate by the factor once per rollback
        made since that checkpoint.
        """
        tensors, state = checkpoint.tensors, checkpoint.state
        weights = {k: v for k, v in tensors.items() if not k.startswith("ema.")}
        try:
            self.model.load_state_dict(weights)
            if self.ema is not None:  # a run that had no EMA before starts its average at the weights
                self.ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")} or weights)
            for name, optimizer in self.optimizers.items():
                optimizer.load_state_dict(state["optimizers"][name])
        except (RuntimeError, KeyError, ValueError):
            raise CheckpointError(
                f"the checkpoint in {str(self.run.path)!r} does not fit this model or optimizer; train into a new --out."
            ) from None
        self.step, self.stream.position = int(state["step"]), int(state["data_position"])
        saved_rollbacks, train = int(state.get("rollbacks", 0)), self.config.train
        if rollback:
            scale = train.rollback_lr_factor ** (self.rollbacks - saved_rollbacks)
        else:  # a resume may set another train.lr: the saved rates follow it
            self.rollbacks, scale = saved_rollbacks, train.lr / state.get("lr", train.lr)
        if scale != 1.0:
            for optimizer in self.optimizers.values():
                for group in optimizer.param_groups:
                    group["lr"] *= scale
        rank = self.state.process_index
        if rank < len(state["rng_cpu"]):
            torch.set_rng_state(state["rng_cpu"][rank])
        else:  # more processes than the run had: a fresh stream for this one
            torch.manual_seed(self.config.train.seed + 7919 * (rank + 1) + self.step)
        if self.device.type == "cuda" and rank < len(state["rng_cuda"]) and state["rng_cuda"][rank] is not None:
            torch.cuda.set_rng_state(state["rng_cuda"][rank])

    def _drop_log_after(self, step: int) -> None:
        """Keep the log lines up to `step`: those of a stopped or abandoned stretch of training go."""
        if self.is_main:
            for path in (self.run.log, self.run.path / "metrics.jsonl"):
                if path.exists():
                    kept = [r for r in read_log(path) if (r.get("step") or 0) <= step]
                    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))

    # ------------------------------------------------------------------------- divergence

    def _check_finite(self, named: dict[str, Tensor]) -> None:
        """Raise `NonFinite` on every process when any of `named` holds a NaN or infinity on any process."""
        named = {k: v for k, v in named.items() if v.is_floating_point()}
        if not named:
            return
        bad = torch.stack([~torch.isfinite(v).all() for v in named.values()]).to(torch.int32)  # (n,)
        if self.state.num_processes > 1:
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        flags = bad.cpu().tolist()
        if any(flags):
            raise NonFinite(list(named)[flags.index(1)])

    def _roll_back(self, error: NonFinite) -> None:
        """Continue from the last good checkpoint with a lower learning rate, or stop with a message."""
        train = self.config.train
        where = f"{error.what} became non-finite by step {self.step}"
        if train.on_divergence == "stop":
            raise TrainingDiverged(f"{where}; the last checkpoint is kept, so lower train.lr or try "
                                   "train.mixed_precision=no, then resume or retrain.")
        if self.rollbacks >= train.max_rollbacks:
            raise TrainingDiverged(f"{where} with all train.max_rollbacks={train.max_rollbacks} rollbacks used; the last "
                                   "good checkpoint is kept, so lower train.lr, then resume or retrain.")
        if not self.run.has_checkpoint():
            raise TrainingDiverged(f"{where}, before the first checkpoint to roll back to; lower train.lr or "
                                   "train.checkpoint_every and retrain.")
        self.rollbacks += 1
        # diverging again before a new checkpoint: the one restored last time may be doomed, so go one further back
        checkpoint = self.run.load_checkpoint(note=self._note, before_step=self._rolled_back_to)
        self._restore(checkpoint, rollback=True)
        self._barrier()  # every process has read it
        if self.is_main:  # a newer checkpoint belongs to the abandoned stretch: a resume must not pick it
            self.run.make_latest(checkpoint)
        self._barrier()
        self._rolled_back_to = self.step
        self._drop_log_after(self.step)
        if self.is_main:
            scale = train.rollback_lr_factor ** self.rollbacks
            console.print(f"[yellow]rollback {self.rollbacks}/{train.max_rollbacks}:[/] {where}; back to the checkpoint "
                          f"of step {self.step} with the learning rates x{scale:g}.", soft_wrap=True, highlight=False)

    # ------------------------------------------------------------------------- the loop

    def _set_trainable(self, group: str) -> None:
        if len(self.groups) > 1:
            for name, params in self.groups.items():
                for param in params:
                    param.requires_grad_(name == group)

    def _average_gradients(self, group: str) -> None:
        grads = [p.grad for p in self.groups[group] if p.grad is not None]
        flat = torch._utils._flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat /= self.state.num_processes
        for grad, averaged in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
            grad.copy_(averaged)

    def train_step(self, sums: dict[str, Tensor]) -> None:
        """Advance one step: every phase of the family once (or `repeats` times). Adds losses to `sums`."""
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
                    batch = self.stream.next()
                    if self.channels_last:  # the layout the convolutions run in on CUDA
                        batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
                with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
                    losses = self.model(phase.name, batch)
                optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                if self.state.num_processes > 1:
                    self._average_gradients(phase.param_group)
                optimizer.step()
                self.model.after_step(phase.name)
                for key, value in losses.items():
                    name = f"{phase.name}/{key}"
                    sums[name] = sums[name] + value.detach().float() if name in sums else value.detach().float()
        if self.ema is not None:
            self.ema.update()

    def fit(self) -> RunFolder:
        train = self.config.train
        if self.is_main:
            self.run.create()
            self.run.remove_temporaries()
            atomic_write_text(self.run.config, self.config.to_json())
        log = TrainingLog(self.run.path, enabled=self.is_main)
        for note in log.notes:
            console.print(f"[yellow]note:[/] {note}", highlight=False)
        handled = (signal.SIGINT, signal.SIGTERM) if _in_main_thread() else ()
        previous = {signum: signal.signal(signum, self._request_stop) for signum in handled}
        progress = _progress_bar(enabled=self.show_progress and self.is_main and console.is_terminal)
        task = progress.add_task(self.config.family, total=train.steps, completed=self.step, speed="", losses="")
        sums: dict[str, Tensor] = {}
        count, last_time, last_position = 0, time.perf_counter(), self.stream.position
        try:
            with progress:
                while self.step < train.steps and not self._stop_requested:
                    try:
                        self.train_step(sums)
                        count += 1
                        progress.advance(task)
                        final = self.step == train.steps
                        if self.step % train.log_every == 0 or final:
                            now = time.perf_counter()
                            images = (self.stream.position - last_position) * self.stream.batch_size
                            record = self._log_record(sums, count, images / max(now - last_time, 1e-9))
                            log.write(record)
                            progress.update(task, speed=f"{record['images_per_s']:,.0f} img/s",
                                            losses=" ".join(f"{k.split('/')[-1]}={v:.3g}" for k, v in record.items() if "/" in k))
                            if not console.is_terminal and self.is_main and self.show_progress:
                                console.print(_format_record(record, train.steps), soft_wrap=True, highlight=False)
                            sums, count, last_time, last_position = {}, 0, now, self.stream.position
                        if self.step % train.sample_every == 0 or final:
                            self.write_samples(log)
                        if train.eval_every and (self.step % train.eval_every == 0 or final):
                            self.evaluate(log)
                        if self.step % train.checkpoint_every == 0 or final:
                            self.save_checkpoint(sums)
                    except NonFinite as error:  # within the logging interval, before anything is saved
                        self._roll_back(error)
                        sums, count, last_time, last_position = {}, 0, time.perf_counter(), self.stream.position
                        progress.update(task, completed=self.step)
            if self._stop_requested:
                try:
                    self.save_checkpoint(sums)
                except NonFinite as error:
                    self._roll_back(error)  # the run stops either way; a rollback just keeps the last checkpoint
                if self.is_main:
                    console.print(f"stopped at step {self.step}; checkpoint saved. Continue with: genzoo resume {self.run.path}")
        except OSError as error:  # a log line or sample grid that cannot be written: the checkpoints stay as they are
            if error.errno not in UNWRITABLE:
                raise
            raise GenzooError(f"cannot write to the run folder {str(self.run.path)!r} ({error.strerror}); the last checkpoint "
                              f"is kept, so free some space and continue with `genzoo resume {self.run.path}`.") from None
        finally:
            log.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if self.is_main:
            from genzoo.report import write_report

            write_report(self.run)
        if self._stop_requested:  # the caller stops too: the run is saved, not finished
            raise KeyboardInterrupt if self._stop_requested == signal.SIGINT else SystemExit(128 + self._stop_requested)
        return self.run

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self._stop_requested:  # a second signal stops at once
            raise KeyboardInterrupt
        self._stop_requested = signum

    def _log_record(self, sums: dict[str, Tensor], count: int, images_per_s: float) -> dict[str, Any]:
        """The mean losses since the last record; raises `NonFinite` (on every process) when one is not finite."""
        names = list(sums)
        values = torch.stack([sums[n] for n in names]).cpu().tolist() if names else []  # the one host sync
        bad = [name for name, total in zip(names, values) if not math.isfinite(total)]
        if self.state.num_processes > 1:  # the processes decide together, or one would wait for the others forever
            flag = torch.tensor([len(bad)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            bad = bad or ["a loss on another process"] * bool(flag.item())
        if bad:
            raise NonFinite(bad[0])
        record: dict[str, Any] = {"step": self.step, "images": self.stream.position * self.stream.batch_size,
                                  "images_per_s": images_per_s, "time": time.time()}
        if self.rollbacks:
            record["rollbacks"] = self.rollbacks
        repeats = {p.name: p.repeats for p in self.model.phases}
        for name, total in zip(names, values):
            record[name] = total / (count * repeats.get(name.split("/")[0], 1))
        return record

    def evaluate(self, log: TrainingLog) -> None:
        """Score the model (its EMA when there is one) against the training data into metrics.jsonl."""
        if not self.is_main:
            return
        from genzoo.metrics.context import EvalContext, model_batches
        from genzoo.metrics.evaluate import compute, sampling_protocol

        train = self.config.train
        model = self.ema.model if self.ema is not None else self.model
        model.eval()
        reference = {"dataset": self.config.data.name, "split": self.config.data.split, "source": self.data.source}
        context = EvalContext(self._eval_network, self.data, reference, min(len(self.data), train.eval_real),
                              model_batches(model, train.eval_samples, 500, train.seed), train.eval_samples, model=model,
                              seed=train.seed, device=self.device, real_features=self._eval_reference,
                              protocol={"ema": self.ema is not None, "sampler": sampling_protocol(model), "step": self.step}, use_cache=False)
        scores = compute(context, train.eval_metrics)
        self._eval_reference = context.real
        record = {"step": self.step, "time": time.time(), "scores": [s.as_dict() for s in scores]}
        with open(self.run.path / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        for score in scores:
            log.scalar(f"eval/{score.name}", score.value, self.step)

    @torch.no_grad()
    def write_samples(self, log: TrainingLog) -> None:
        if not self.is_main:
            return
        model = self.ema.model if self.ema is not None else self.model
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            images = preview_images(model, self.preview_batch, self.config.train.num_preview, seed=self.config.train.seed)
        grid = save_grid(images, self.run.samples / f"step-{self.step:06d}.png")
        log.image("samples", grid, self.step)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[speed]}"),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
        console=console, disable=not enabled, transient=False,
    )


def _format_record(record: dict[str, Any], total: int) -> str:
    losses = " ".join(f"{k}={v:.4g}" for k, v in record.items() if "/" in k)
    return f"step {record['step']}/{total}  {record['images_per_s']:,.0f} img/s  {losses}"

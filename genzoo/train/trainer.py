"""The one training loop. It knows `GenerativeModel`'s interface and never names a family.

Per step, every phase of the family runs in order (`repeats` times, on steps divisible by `every`):
the phase's parameter group alone requires gradients, `forward(phase, batch)["total"]` is
back-propagated and the group's optimizer steps. Losses are summed on the device and read every
`log_every` steps, the only host synchronisation in the loop. Processes and devices come from
Accelerate (`accelerate launch -m genzoo train ...` for several); with several processes each
phase's gradients are averaged across processes before its optimizer steps, which stays correct
however the phases toggle `requires_grad` (a single DDP wrapper would not).
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
from genzoo.errors import CheckpointError, DataError, GenzooError
from genzoo.models.base import GenerativeModel, preview_images
from genzoo.report.grids import save_grid
from genzoo.registry import MODELS
from genzoo.train.checkpoint import RunFolder, atomic_write_text
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


class Trainer:
    def __init__(self, config: RunConfig, out: str | Path, resume: bool = False, progress: bool = True) -> None:
        self.config, self.run, self.resume, self.show_progress = config, RunFolder(out), resume, progress
        self.state = PartialState(cpu=self._want_cpu())
        self.device = self.state.device
        self.is_main = self.state.is_main_process
        train = config.train
        self.amp_dtype = torch.bfloat16 if (train.mixed_precision == "bf16" or (
            train.mixed_precision == "auto" and self.device.type == "cuda")) else None
        self._check_run_folder()

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
                f"does not provide (it has {list(self.data.keys)}); choose a dataset with them."
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
        self.step = 0
        tensors = self._load_checkpoint() if resume else {}
        if self.state.num_processes > 1 and not resume:
            for tensor in self.model.state_dict().values():
                dist.broadcast(tensor, 0)
        self.ema = EMA(self.model, train.ema_decay, self.model.ema_modules) if train.ema_decay is not None else None
        if self.ema is not None and any(k.startswith("ema.") for k in tensors):
            self.ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        if not resume:  # a resumed run continues with the random state it saved
            torch.manual_seed(train.seed + 7919 * (self.state.process_index + 1))
        self.preview_batch = self.data.batch(torch.arange(min(train.num_preview, len(self.data)), device=self.data.images.device))
        self._stop_requested = 0  # the signal number that asked to stop

    # ------------------------------------------------------------------------- setup

    def _want_cpu(self) -> bool:
        choice = self.config.train.device
        if choice == "cuda" and not torch.cuda.is_available():
            raise GenzooError("train.device=cuda but no CUDA GPU is visible; use train.device=auto or cpu.")
        return choice == "cpu" or not torch.cuda.is_available()

    def _check_run_folder(self) -> None:
        run = self.run
        if self.resume:
            if not run.has_checkpoint():
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
        elif run.has_checkpoint() or run.config.exists():
            raise CheckpointError(
                f"{str(run.path)!r} already holds a run; pass --resume to continue it or choose another --out."
            )
        if self.is_main:
            run.check_writable()  # the folder itself is created once everything else checked out

    # ------------------------------------------------------------------------- checkpoints

    def _weights(self) -> dict[str, Tensor]:
        tensors = dict(self.model.state_dict())
        if self.ema is not None:
            tensors.update({f"ema.{key}": value for key, value in self.ema.state_dict().items()})
        return tensors

    def save_checkpoint(self) -> None:
        if self.is_main:
            metadata = {"family": self.config.family, "data_info": self.data.info.__dict__, "step": self.step}
            weights_sha256 = self.run.save_weights(self._weights(), metadata)
            self.run.save_state({
                "step": self.step,
                "data_position": self.stream.position,
                "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "weights_sha256": weights_sha256,
            })
        if self.state.num_processes > 1:
            dist.barrier()

    def _load_checkpoint(self) -> dict[str, Tensor]:
        """Restore weights, optimizers, step, data position and RNG; return the saved tensors."""
        tensors, _ = self.run.load_weights()
        state = self.run.load_state()
        try:
            self.model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("ema.")})
        except RuntimeError:
            raise CheckpointError(f"the weights in {self.run.weights} do not fit this model; train into a new --out.") from None
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.step, self.stream.position = int(state["step"]), int(state["data_position"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        if self.is_main:  # drop log lines written after this checkpoint by the interrupted run
            for path in (self.run.log, self.run.path / "metrics.jsonl"):
                if path.exists():
                    kept = [r for r in read_log(path) if (r.get("step") or 0) <= self.step]
                    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
        return tensors

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
            atomic_write_text(self.run.config, self.config.to_json())
        log = TrainingLog(self.run.path, enabled=self.is_main)
        handled = (signal.SIGINT, signal.SIGTERM) if _in_main_thread() else ()
        previous = {signum: signal.signal(signum, self._request_stop) for signum in handled}
        progress = _progress_bar(enabled=self.show_progress and self.is_main and console.is_terminal)
        task = progress.add_task(self.config.family, total=train.steps, completed=self.step, speed="", losses="")
        sums: dict[str, Tensor] = {}
        count, last_time, last_position = 0, time.perf_counter(), self.stream.position
        try:
            with progress:
                while self.step < train.steps and not self._stop_requested:
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
                        self.save_checkpoint()
            if self._stop_requested:
                self.save_checkpoint()
                if self.is_main:
                    console.print(f"stopped at step {self.step}; checkpoint saved. Continue with: genzoo resume {self.run.path}")
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
        names = list(sums)
        values = torch.stack([sums[n] for n in names]).cpu().tolist() if names else []  # the one host sync
        record: dict[str, Any] = {"step": self.step, "images": self.stream.position * self.stream.batch_size,
                                  "images_per_s": images_per_s, "time": time.time()}
        repeats = {p.name: p.repeats for p in self.model.phases}
        for name, total in zip(names, values):
            if not math.isfinite(total):
                raise TrainingDiverged(
                    f"{name} became non-finite by step {self.step}; the last checkpoint is kept, "
                    "lower train.lr or try train.mixed_precision=no, then resume or retrain."
                )
            record[name] = total / (count * repeats.get(name.split("/")[0], 1))
        return record

    def evaluate(self, log: TrainingLog) -> None:
        """Score the model (its EMA when there is one) against the training data into metrics.jsonl."""
        if not self.is_main:
            return
        from genzoo.metrics.context import EvalContext, model_batches
        from genzoo.metrics.evaluate import compute

        train = self.config.train
        model = self.ema.model if self.ema is not None else self.model
        model.eval()
        reference = {"dataset": self.config.data.name, "split": self.config.data.split, "source": self.data.source}
        context = EvalContext(self._eval_network, self.data, reference, min(len(self.data), train.eval_real),
                              model_batches(model, train.eval_samples, 500, train.seed), train.eval_samples, model=model,
                              seed=train.seed, device=self.device, real_features=self._eval_reference,
                              protocol={"ema": self.ema is not None, "sampler": None, "step": self.step}, use_cache=False)
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

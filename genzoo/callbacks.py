"""The standard callbacks `genzoo.api.make_trainer` hands the trainer: sample previews, periodic
evaluation, and the report at the end. They live here, above the trainer, so that the trainer imports
nothing of metrics or reports."""

from __future__ import annotations

import json
import time
from typing import Any

import torch

from genzoo.config import RunConfig
from genzoo.io import atomic_write_text
from genzoo.train.callbacks import Callback

Trainer = Any  # genzoo.train.trainer.Trainer, which imports this module (not imported back: no cycle)


class Previews(Callback):
    """What the model shows every `train.sample_every` steps (its `preview`): an image grid
    `samples/step-000100.png`, or text `samples/step-000100.txt`; nothing for a model that shows nothing."""

    def __init__(self, config: RunConfig) -> None:
        self.every = config.train.sample_every

    @torch.no_grad()
    def on_step(self, trainer: Trainer) -> None:
        from genzoo.report.grids import save_grid

        train = trainer.config.train
        model = trainer.sampling_model
        was_training = model.training
        model.eval()
        try:
            with torch.autocast(trainer.device.type, dtype=trainer.amp_dtype or torch.float32, enabled=trainer.amp_dtype is not None):
                preview = model.preview(trainer.preview_batch, train.num_preview, seed=train.seed)
        finally:
            model.train(was_training)
        name = trainer.run.samples / f"step-{trainer.step:06d}"
        if isinstance(preview, torch.Tensor):
            grid = save_grid(preview, name.with_suffix(".png"))
            trainer.log.image("samples", grid, trainer.step)
        elif preview is not None:  # text
            atomic_write_text(name.with_suffix(".txt"), "\n".join(preview) + "\n")
            trainer.log.text("samples", "\n\n".join(preview), trainer.step)


class Evaluation(Callback):
    """Scores of the model (its EMA when there is one) against the training data every
    `train.eval_every` steps, into metrics.jsonl and TensorBoard. Unknown metrics or a missing
    feature network fail when the callback is made, before training, not at step N."""

    def __init__(self, config: RunConfig) -> None:
        from genzoo.metrics.features import load_features
        from genzoo.registry import METRICS

        train = config.train
        self.every = train.eval_every
        self.metrics = list(train.eval_metrics)
        for name in self.metrics:
            METRICS.get(name)
        from genzoo.metrics.evaluate import check_modality
        from genzoo.registry import MODELS

        check_modality(MODELS.get(config.family).modality, self.metrics, f"a {config.family} model")
        self.network = load_features(train.eval_extractor) if self.every else None
        self.reference = None  # real features, extracted once

    def on_start(self, trainer: Trainer) -> None:
        """Refuse metrics that cannot score this data (a metric's optional `check_data`) before training, not at step N."""
        from genzoo.registry import METRICS

        for name in self.metrics:
            check = getattr(METRICS.get(name), "check_data", None)
            if check is not None:
                check(trainer.data)

    def on_step(self, trainer: Trainer) -> None:
        from genzoo.metrics.context import EvalContext
        from genzoo.metrics.evaluate import compute, sampling_protocol
        from genzoo.metrics.translation import image_source

        train = trainer.config.train
        model = trainer.sampling_model
        model.eval()
        source = image_source(model, trainer.data, train.eval_samples, 500, train.seed)  # samples, or translations
        reference = {"dataset": trainer.config.data.name, "split": trainer.config.data.split, "source": source.real.source}
        context = EvalContext(self.network, source.real, reference, min(len(source.real), train.eval_real),
                              source.batches, source.count, model=model,
                              seed=train.seed, device=trainer.device, real_features=self.reference,
                              protocol={"ema": trainer.ema is not None, **self._averaging(train, trainer.ema is not None),
                                        "sampler": sampling_protocol(model), "step": trainer.step, **source.protocol},
                              use_cache=False)
        scores = compute(context, self.metrics)
        model.train()
        self.reference = context.__dict__.get("real", self.reference)  # real features, if a metric extracted them
        record = {"step": trainer.step, "time": time.time(), "scores": [s.as_dict() for s in scores]}
        with open(trainer.run.path / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        for score in scores:
            trainer.log.scalar(f"eval/{score.name}", score.value, trainer.step)


    @staticmethod
    def _averaging(train: Any, ema: bool) -> dict[str, Any]:
        """How the EMA weights were averaged (decay, warm-up), for the protocol of scores drawn from them."""
        return {"ema_decay": train.ema_decay, "ema_warmup": train.ema_warmup} if ema else {}


class Report(Callback):
    """report.html (and losses.png) once training ends or stops."""

    def on_end(self, trainer: Trainer) -> None:
        from genzoo.report import write_report

        write_report(trainer.run)


def standard_callbacks(config: RunConfig) -> list[Callback]:
    return [Previews(config), *([Evaluation(config)] if config.train.eval_every else []), Report()]

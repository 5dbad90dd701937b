"""genzoo's training step against a plain eager PyTorch loop of the same model, for the benchmarks.

The plain loop is what one writes by hand: random batches from the same dataset, forward, zero_grad,
backward, Adam step (the same model class, rate and betas). genzoo's side is `Trainer.train_step`
(schedule, phases, the batch stream, loss sums kept on the device). The two take turns in rounds of
`steps` steps, and the fastest round of each is reported, so that other load on a shared machine
distorts the ratio as little as possible (as benchmarks/train_speed.py does).
"""

from __future__ import annotations

import tempfile
import time

import torch

from genzoo.api import make_trainer
from genzoo.config import RunConfig
from genzoo.registry import MODELS


def trainer_vs_plain(config: RunConfig, steps: int = 5, rounds: int = 3) -> dict[str, float]:
    """Items (images or rays) per second of genzoo's step and of a plain loop: {"genzoo": .., "plain": .., "ratio": ..}."""
    batch_size = config.train.batch_size
    with tempfile.TemporaryDirectory() as folder:
        trainer = make_trainer(config, f"{folder}/run", progress=False)
        data = trainer.data
        torch.manual_seed(0)
        model = MODELS.get(config.family)(config.model, data.info).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, betas=tuple(config.train.betas))
        generator = torch.Generator().manual_seed(0)
        sums: dict = {}

        def plain() -> None:
            batch = data.batch(torch.randint(len(data), (batch_size,), generator=generator))
            loss = model("main", batch)["total"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        best = {"genzoo": 0.0, "plain": 0.0}
        for round_ in range(rounds + 1):  # the first round warms up and is not counted
            for name, step in (("genzoo", lambda: trainer.train_step(sums)), ("plain", plain)):
                start = time.perf_counter()
                for _ in range(steps):
                    step()
                if sums:
                    torch.stack(list(sums.values())).sum().item()  # what fit() reads every log_every steps
                rate = steps * batch_size / (time.perf_counter() - start)
                if round_:
                    best[name] = max(best[name], rate)
        trainer.lock.release()
    return {**best, "ratio": best["genzoo"] / best["plain"]}

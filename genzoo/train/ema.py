"""Exponential moving average of a model's weights (Polyak averaging; Karras et al. 2018 for GANs).

The average lives in a copy of the model; only the submodules the family names in `ema_modules`
are averaged (a GAN's generator, not its discriminator), their buffers are copied as they are.

Warm-up (`train.ema_warmup`, on by default): at step t the decay is min(decay, (1 + t) / (10 + t)),
as timm and diffusers do, so the average forgets the random initial weights quickly: with a fixed
0.999 the average of a 100-step run is still 90% initial weights (0.999^100 = 0.905) and samples
as a grey blur; with the warm-up the initial weights weigh prod_{s<=100} decay_s < 1e-3 by then. The
decay is a function of the step alone, so a resumed run averages exactly as one straight through.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


def ema_decay(decay: float, step: int, warmup: bool) -> float:
    """The decay used at `step` (1-based): min(decay, (1 + step) / (10 + step)) with warm-up, else decay."""
    return min(decay, (1 + step) / (10 + step)) if warmup else decay


class EMA:
    def __init__(self, model: nn.Module, decay: float, module_names: tuple[str, ...], warmup: bool = True) -> None:
        self.decay, self.warmup = decay, warmup
        self.module_names = module_names
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        sources = [getattr(model, name) for name in module_names]
        targets = [getattr(self.model, name) for name in module_names]
        self._params = [(list(t.parameters()), list(s.parameters())) for t, s in zip(targets, sources)]
        self._buffers = [(list(t.buffers()), list(s.buffers())) for t, s in zip(targets, sources)]

    @torch.no_grad()
    def update(self, step: int) -> None:
        """theta_ema <- d theta_ema + (1 - d) theta, with d = ema_decay(decay, step, warmup)."""
        weight = 1.0 - ema_decay(self.decay, step, self.warmup)
        for averaged, current in self._params:
            if averaged:
                torch._foreach_lerp_(averaged, current, weight)
        for averaged, current in self._buffers:
            if averaged:  # (modules without buffers, e.g. GroupNorm networks or embeddings)
                torch._foreach_copy_(averaged, current)

    def state_dict(self) -> dict[str, Tensor]:
        return {key: value for key, value in self.model.state_dict().items() if key.split(".")[0] in self.module_names}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.model.load_state_dict(state, strict=False)

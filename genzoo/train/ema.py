"""Exponential moving average of a model's weights (Polyak averaging; Karras et al. 2018 for GANs).

The average lives in a copy of the model; only the submodules the family names in `ema_modules`
are averaged (a GAN's generator, not its discriminator), their buffers are copied as they are.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class EMA:
    def __init__(self, model: nn.Module, decay: float, module_names: tuple[str, ...]) -> None:
        self.decay = decay
        self.module_names = module_names
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        sources = [getattr(model, name) for name in module_names]
        targets = [getattr(self.model, name) for name in module_names]
        self._params = [(list(t.parameters()), list(s.parameters())) for t, s in zip(targets, sources)]
        self._buffers = [(list(t.buffers()), list(s.buffers())) for t, s in zip(targets, sources)]

    @torch.no_grad()
    def update(self) -> None:
        for averaged, current in self._params:  # theta_ema <- decay * theta_ema + (1 - decay) * theta
            if averaged:
                torch._foreach_lerp_(averaged, current, 1.0 - self.decay)
        for averaged, current in self._buffers:
            if averaged:  # (modules without buffers, e.g. GroupNorm networks or embeddings)
                torch._foreach_copy_(averaged, current)

    def state_dict(self) -> dict[str, Tensor]:
        return {key: value for key, value in self.model.state_dict().items() if key.split(".")[0] in self.module_names}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.model.load_state_dict(state, strict=False)

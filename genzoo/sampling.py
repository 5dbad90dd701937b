"""Sampling options given on the command line (`--truncation`, `--steps`, `--sampler`, `--eta`,
`--guidance`): checked against what the model's `generate` accepts, and applied to every sample a
command draws, including those of evaluation metrics (`WithSampling`), with the settings in the protocol."""

from __future__ import annotations

import inspect
from typing import Any

from genzoo.errors import GenzooError


def sampling_options(model: Any, **values: Any) -> dict[str, Any]:
    """The options that were given (not None), each one a keyword the model's `generate` takes."""
    accepted = inspect.signature(model.generate).parameters
    options = {}
    for name, value in values.items():
        if value is None:
            continue
        if name not in accepted:
            raise GenzooError(f"a {type(model).__name__} model has no {name.replace('_', ' ')}; "
                              f"drop --{name.replace('_', '-')}.")
        options[name] = value
    return options


class WithSampling:
    """`model` with `generate` drawing with `options`; every other attribute is the model's own.

    `sampling_protocol()` states the settings used: the model's own description of them when it has
    one (e.g. diffusion: the steps a sampler runs when --steps is left out), else the options given."""

    def __init__(self, model: Any, options: dict[str, Any]) -> None:
        self.__dict__.update(model=model, options=dict(options))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["model"], name)

    def generate(self, n: int, labels: Any = None, generator: Any = None, **kwargs: Any) -> Any:
        return self.model.generate(n, labels=labels, generator=generator, **{**self.options, **kwargs})

    def sampling_protocol(self) -> dict[str, Any] | None:
        describe = getattr(self.model, "sampling_protocol", None)
        if callable(describe) and all(name in inspect.signature(describe).parameters for name in self.options):
            return describe(**self.options)
        return {**((describe() or {}) if callable(describe) else {}), **self.options} or None


def parse_labels(text: str, n: int, model: Any, names: Any = None) -> list[int]:
    """`--labels`: one class for all n samples, or a comma list of n; each an index or a class name (case and
    punctuation ignored, unique prefixes allowed: "sneaker", "ankle boot", "T-shirt"): those the model's data had
    (`model.info.class_names`), else `names` (for runs saved before class names were)."""
    from genzoo.latent import resolve_class

    num_classes = int(getattr(model, "num_classes", 0) or 0)
    if not getattr(model, "conditional", False) or not num_classes:
        raise GenzooError(f"this {type(model).__name__} model is not class-conditional and takes no labels; drop --labels.")
    items = [item.strip() for item in str(text).split(",")]
    if not all(items):
        raise GenzooError(f"--labels {text!r} has an empty entry; give class indices or names separated by commas, "
                          "e.g. --labels 3 or --labels Sneaker,Bag.")
    if len(items) not in (1, n):
        raise GenzooError(f"{len(items)} labels for {n} samples; give one label for all of them, or one per sample "
                          f"(or -n {len(items)}).")
    info_names = getattr(getattr(model, "info", None), "class_names", None)
    names = tuple(info_names or names or ())
    if len(names) != num_classes:
        names = tuple(str(i) for i in range(num_classes))
    values = []
    for item in items:
        try:
            values.append(resolve_class(item, names))
        except GenzooError:
            known = ", ".join(f"{i}={name}" if name != str(i) else name for i, name in enumerate(names))
            raise GenzooError(f"--labels {item!r} is not a class of this model; give class indices 0 to "
                              f"{num_classes - 1} or names ({known}).") from None
    return values * n if len(values) == 1 else values

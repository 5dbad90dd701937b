"""Run configuration: pydantic models, presets, YAML files and dotted overrides.

A run is described by one `RunConfig`: the family (a registered model name), the family's own
config, the data and the training schedule. Every model is frozen and rejects unknown keys, so a
typo is an error that names the key. A preset is a small YAML file in `genzoo/configs/` that holds
only the keys it changes; `config.json` in a run folder is the fully resolved config that ran.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SerializeAsAny,
    ValidationError,
    field_validator,
)

from genzoo.errors import ConfigError
from genzoo.registry import MODELS

PRESET_DIR = Path(__file__).parent / "configs"


def resolve_path(path: str) -> str:
    """A path as config.json stores it: `~` expanded and absolute (symbolic links kept), so that a run's
    `resume`, `eval` and `sample` find its files from any working folder."""
    return os.path.abspath(os.path.expanduser(path)) if path else path


# Every file or folder setting of a config has this type (a test checks it).
PathSetting = Annotated[str, AfterValidator(resolve_path)]


class StrictModel(BaseModel):
    """A frozen config section that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FamilyConfig(StrictModel):
    """Base of every family's `Config`; each family adds its own keys."""


class TargetConfig(StrictModel):
    """`data.target`: the unlabelled target data of domain adaptation; it takes the source's image size
    and channels, so that both sides of a batch match."""

    name: str  # a registered image dataset (`genzoo list`)
    root: str | None = None  # a local copy, as data.root
    split: Literal["train", "test", "all"] = "train"
    download: bool = False  # as data.download
    max_images: PositiveInt | None = None  # keep only the first N target images


class DataConfig(StrictModel):
    name: str = "fashion-mnist"  # a registered dataset (`genzoo list`)
    root: PathSetting | None = None  # a local copy; otherwise $GENZOO_DATA, system paths, then the embedded sample
    split: Literal["train", "test", "all"] = "train"
    image_size: PositiveInt | None = None  # None: the dataset's own size; else resize + centre crop
    pad_to: PositiveInt | None = None  # pad (black, centred) to this side after any resize, e.g. 28 -> 32 for growing GANs
    channels: Literal[1, 3] | None = None  # None: the dataset's own; 1 = grey, 3 = RGB
    download: bool = False  # fetch with torchvision when no local copy is found (explicit opt-in)
    max_images: PositiveInt | None = None  # keep only the first N images (quick runs)
    domains: tuple[int | str, int | str] | None = None  # two classes (names or indices) as domains a and b
    target: TargetConfig | None = None  # domain adaptation: a second image dataset whose labels training never sees
    direction: Literal["AtoB", "BtoA"] = "AtoB"  # paired images: BtoA swaps the sides (a is what a model reads)
    classes: tuple[int | str, ...] | None = None  # keep only these classes (names or indices), relabelled 0..K-1 in this order
    task: Literal["edges", "grey", "superres", "inpaint", "denoise"] | None = None  # pairs (degraded a, image b) from any image data
    # text datasets (text, fortunes)
    tokens: Literal["chars", "bytes"] = "chars"  # a token per character (the corpus's own) or per byte (256)
    sequence_length: PositiveInt = 128  # tokens a text model reads per window; a batch holds L + 1

    @field_validator("target", mode="before")
    @classmethod
    def _target_name(cls, value: object) -> object:
        return {"name": value} if isinstance(value, str) else value  # data.target=digits: a dataset name alone


class TrainConfig(StrictModel):
    steps: PositiveInt = 2000  # optimisation steps; one step runs every phase of the family once
    batch_size: PositiveInt = 64  # global batch, split across processes
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"
    lr: PositiveFloat = 2e-4
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"  # decay of every rate over the run
    warmup_steps: NonNegativeInt = 0  # rates ramp up linearly over this many first steps
    betas: tuple[float, float] = (0.5, 0.999)  # Adam/AdamW only; (0.5, 0.999) as in DCGAN
    weight_decay: NonNegativeFloat = 0.0
    momentum: float = Field(0.0, ge=0.0, lt=1.0)  # SGD and RMSprop only (DANN's SGD: 0.9)
    group_lr: dict[str, PositiveFloat] = Field(default_factory=dict)  # per parameter group, instead of lr (TTUR)
    ema_decay: float | None = Field(None, ge=0.0, lt=1.0)  # None: no EMA of the weights
    ema_warmup: bool = True  # decay min(ema_decay, (1 + step) / (10 + step)): short runs average well too
    mixed_precision: Literal["auto", "no", "bf16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    device: Literal["auto", "cpu", "cuda"] = "auto"
    channels_last: bool | None = None  # None: on CUDA (faster convolutions), not on the CPU
    seed: int = 0
    process_noise: Literal["distinct", "shared"] = "distinct"  # shared: every process draws the same noise (parity tests)
    deterministic: bool = False  # deterministic kernels (slower); exact resume on CPU holds either way
    log_every: PositiveInt = 50  # steps between reads of the losses (the only host syncs); at most steps/min_log_records
    min_log_records: NonNegativeInt = 20  # a short run logs more often, to have this many records; 0: every log_every
    sample_every: PositiveInt = 500  # steps between sample grids in samples/
    checkpoint_every: PositiveInt = 1000  # steps between checkpoints (one is always written at the end)
    on_divergence: Literal["rollback", "stop"] = "rollback"  # a non-finite loss: reload the last checkpoint, or stop
    rollback_lr_factor: float = Field(0.5, gt=0.0, le=1.0)  # each rollback multiplies every learning rate by this
    max_rollbacks: NonNegativeInt = 3  # rollbacks in one run before it stops
    num_preview: PositiveInt = 64  # images in each sample grid
    eval_every: PositiveInt | None = None  # steps between evaluations into metrics.jsonl; None: never
    eval_metrics: tuple[str, ...] = ("fid", "pr")  # registered metrics (`genzoo list`)
    eval_samples: PositiveInt = 2000  # generated images per evaluation
    eval_real: PositiveInt = 10_000  # real images of the reference (at most the dataset's)
    eval_extractor: str = "fmnist"  # feature network of the evaluations

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_no(cls, value: object) -> object:
        return "no" if value is False else value  # YAML reads a bare `no` as false


class RunConfig(StrictModel):
    family: str  # a registered family (`genzoo list`)
    model: SerializeAsAny[FamilyConfig] = Field(default_factory=FamilyConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


# ----------------------------------------------------------------------------- building

def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def build_config(raw: dict[str, Any]) -> RunConfig:
    """Validate a plain dict into a `RunConfig`, with one-sentence errors."""
    if not isinstance(raw, dict):
        raise ConfigError("a config must be a mapping of keys to values; see `genzoo list` for presets.")
    if "family" not in raw:
        raise ConfigError(f"the config has no 'family' key; set it to one of: {', '.join(MODELS.names())}.")
    if not isinstance(raw["family"], str):
        raise ConfigError(f"config key 'family' must be a name, one of: {', '.join(MODELS.names())}.")
    family_class = MODELS.get(raw["family"])
    model_raw = raw.get("model") or {}
    try:
        model = family_class.Config.model_validate(model_raw)
    except ValidationError as error:
        raise explain(error, family_class.Config, prefix="model") from None
    try:
        return RunConfig.model_validate({**raw, "model": model})
    except ValidationError as error:
        raise explain(error, RunConfig) from None


def load_config(source: str, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Resolve a preset name, family name or YAML/JSON file, then apply `key=value` overrides."""
    raw = _read_source(source)
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(raw, key, value)
    return build_config(raw)


def parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item or item.startswith("="):
        raise ConfigError(f"override {item!r} is not of the form key=value, e.g. train.batch_size=128.")
    key, text = item.split("=", 1)
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        value = text
    return key.strip(), value


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            section = ".".join(parts[: depth + 1])
            raise ConfigError(f"cannot set {key!r}: {section!r} was given the value {child!r}, not keys; give all of it "
                              f"as keys ({section}.KEY=VALUE).")
        node = child
    node[parts[-1]] = value


def _read_source(source: str) -> dict[str, Any]:
    path = Path(source)
    looks_like_path = path.suffix in {".yaml", ".yml", ".json"} or "/" in source
    is_name = (PRESET_DIR / f"{source}.yaml").exists() or source in MODELS
    if looks_like_path or (path.exists() and not is_name):  # a bare preset name wins over a folder of that name
        if path.is_dir() and (path / "config.json").exists():
            path = path / "config.json"
        if not path.is_file():
            raise ConfigError(f"config file {source!r} does not exist; give a preset name or a YAML file.")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise ConfigError(f"config file {source!r} is not valid YAML ({_first_line(error)}); fix the file.") from None
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(f"config file {source!r} holds a {type(raw).__name__}, not a mapping of keys to values; fix the file.")
        return dict(raw or {})
    preset = PRESET_DIR / f"{source}.yaml"
    if preset.exists():
        return dict(yaml.safe_load(preset.read_text(encoding="utf-8")) or {})
    if source in MODELS:
        return {"family": source}
    choices = list_presets() + [n for n in MODELS.names() if n not in list_presets()]
    near = difflib.get_close_matches(source, choices, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise ConfigError(f"unknown preset or family {source!r}{hint}; choose one of: {', '.join(choices)}, or a YAML file.")


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


LIST_EXAMPLES = {"domains": "[Sneaker, Ankle boot] or [7, 9] (two classes)",
                 "classes": "[Sandal, Sneaker, Ankle boot] or [5, 7, 9]"}  # list-valued keys' examples


def explain(error: ValidationError, model: type[BaseModel], prefix: str = "") -> ConfigError:
    """Turn pydantic's first error into one sentence that names the key and what is allowed."""
    first = error.errors()[0]
    location = [str(part) for part in first["loc"] if not isinstance(part, int)]  # drop list positions
    key = ".".join(([prefix] if prefix else []) + location)
    if len(location) < len(first["loc"]):
        example = LIST_EXAMPLES.get(location[-1], "[0.5, 0.999]")
        return ConfigError(f"config key {key!r} has a wrong item ({first['msg'].rstrip('.').lower()}); give a list such as {example}.")
    if first["type"] == "extra_forbidden":
        section = _section(model, location[:-1])
        allowed = ", ".join(section.model_fields) if section else "none"
        near = difflib.get_close_matches(location[-1], list(section.model_fields) if section else [], n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return ConfigError(f"unknown config key {key!r}{hint}; allowed keys here: {allowed}.")
    if first["type"] == "missing":
        return ConfigError(f"config key {key!r} is required; add it to the config or as {key}=VALUE.")
    message = first["msg"].rstrip(".")
    return ConfigError(f"config key {key!r} = {first.get('input')!r} is invalid: {message}.")


def _section(model: type[BaseModel], path: list[str]) -> type[BaseModel] | None:
    for part in path:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        nested = [a for a in get_args(annotation) or (annotation,) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:  # neither a section nor an optional one (data.target)
            return None
        model = nested[0]
    return model

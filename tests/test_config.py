"""Run configs: presets, files, dotted overrides, one-sentence errors, frozen models, JSON round trip."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

import genzoo  # noqa: F401  (fills the registries)
from genzoo.config import DataConfig, RunConfig, TrainConfig, build_config, list_presets, load_config, parse_override
from genzoo.errors import ConfigError
from genzoo.registry import MODELS

FAMILIES = MODELS.names()


def config_error(source: str, overrides: list[str] = ()) -> str:
    """The message of the ConfigError that loading raises, checked to be one plain sentence."""
    with pytest.raises(ConfigError) as error:
        load_config(source, overrides)
    message = str(error.value)
    assert "\n" not in message and message.endswith("."), message
    assert not re.search(r"[.?!] +[A-Z]", message), f"more than one sentence: {message}"
    assert "errors.pydantic.dev" not in message
    return message


# ----------------------------------------------------------------------------- sources

def test_presets_are_listed():
    assert {"autoencoder", "dcgan", "dcgan-minimax", "demo", "vae"} <= set(list_presets())


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_validates_with_its_family_config(preset):
    config = load_config(preset)
    assert config.family in FAMILIES
    assert type(config.model) is MODELS.get(config.family).Config


def test_preset_values_are_applied_over_defaults():
    config = load_config("dcgan-minimax")
    assert type(config.model).__name__ == "GANConfig" and config.model.objective == "minimax"
    assert config.train.batch_size == 128 and config.train.ema_decay == 0.999 and config.train.betas == (0.5, 0.999)
    assert config.train.optimizer == "adam" and config.data == DataConfig()  # untouched keys keep defaults
    assert load_config("dcgan").model.objective == "non-saturating"
    assert load_config("demo").data.name == "fashion-mnist-sample"


@pytest.mark.parametrize("family", FAMILIES)
def test_family_name_alone_gives_defaults(family):
    expected = RunConfig(family=family, model=MODELS.get(family).Config())
    assert expected.train == TrainConfig() and expected.data == DataConfig()
    assert build_config({"family": family}) == expected
    if family not in list_presets():  # "gan"; "vae" and "autoencoder" are also preset names, and presets win
        assert load_config(family) == expected


def test_vae_name_is_a_preset_over_the_family_defaults():
    preset, bare = load_config("vae"), build_config({"family": "vae"})
    assert preset.family == bare.family == "vae" and type(preset.model) is type(bare.model)
    assert bare.train.steps == 2000 and preset.train.steps == 5000


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_file(tmp_path, suffix):
    path = tmp_path / f"mine{suffix}"
    path.write_text("family: gan\nmodel:\n  latent_dim: 16\ntrain:\n  steps: 7\n  betas: [0.0, 0.99]\ndata:\n  name: fake\n")
    config = load_config(str(path), ["train.steps=9"])
    assert config.model.latent_dim == 16 and config.train.betas == (0.0, 0.99) and config.data.name == "fake"
    assert config.train.steps == 9  # overrides come after the file


def test_run_folder_config_json(tmp_path):
    original = load_config("dcgan-minimax", ["train.steps=3", "data.root=/data/fm"])
    (tmp_path / "config.json").write_text(original.to_json())
    assert load_config(str(tmp_path)) == original
    assert load_config(str(tmp_path / "config.json")) == original
    assert load_config(str(tmp_path), ["train.steps=4"]).train.steps == 4


# ----------------------------------------------------------------------------- overrides

@pytest.mark.parametrize(
    "overrides, read, expected",
    [
        (["train.batch_size=128"], lambda c: c.train.batch_size, 128),
        (["train.betas=[0.0, 0.9]"], lambda c: c.train.betas, (0.0, 0.9)),
        (["model.objective=minimax"], lambda c: c.model.objective, "minimax"),
        (["data.root=/some/where", "data.root=null"], lambda c: c.data.root, None),
        (["data.root=/a=b"], lambda c: c.data.root, "/a=b"),
        (["train.lr=1e-3"], lambda c: c.train.lr, 0.001),
        (["train.ema_decay=0.99"], lambda c: c.train.ema_decay, 0.99),
        (["train.deterministic=true"], lambda c: c.train.deterministic, True),
        (["data.image_size=32", "data.channels=3"], lambda c: (c.data.image_size, c.data.channels), (32, 3)),
        ([" data.split =all"], lambda c: c.data.split, "all"),
    ],
)
def test_dotted_overrides(overrides, read, expected):
    value = read(load_config("gan", overrides))
    assert value == expected and type(value) is type(expected)


def test_override_values_are_parsed_as_yaml():
    assert parse_override("train.batch_size=128") == ("train.batch_size", 128)
    assert parse_override("data.root=null") == ("data.root", None)
    assert parse_override("train.betas=[0.0, 0.9]") == ("train.betas", [0.0, 0.9])
    assert parse_override("data.root=") == ("data.root", "")


@pytest.mark.parametrize("item", ["train.batch_size", "=128", ""])
def test_malformed_override_raises(item):
    message = config_error("gan", [item])
    assert "key=value" in message


def test_override_into_a_value_raises():
    assert "'train.steps.x'" in config_error("gan", ["train.steps=5", "train.steps.x=1"])


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize(
    "overrides, fragments",
    [
        (["foo=1"], ["'foo'", "family, model, data, train"]),
        (["train.batch_sise=3"], ["'train.batch_sise'", "did you mean 'batch_size'", "steps, batch_size, optimizer"]),
        (["data.nmae=fake"], ["'data.nmae'", "did you mean 'name'"]),
        (["train.batch_size=abc"], ["'train.batch_size'", "'abc'", "integer"]),
        (["train.steps=0"], ["'train.steps'", "greater than 0"]),
        (["train.lr=-1"], ["'train.lr'", "-1", "greater than 0"]),
        (["train.ema_decay=1.5"], ["'train.ema_decay'", "1.5", "less than 1"]),
        (["train.optimizer=adagrad"], ["'train.optimizer'", "'adagrad'", "'adam'", "'adamw'", "'rmsprop'", "'sgd'"]),
        (["data.channels=2"], ["'data.channels'", "1 or 3"]),
        (["data.split=val"], ["'data.split'", "'train'", "'test'", "'all'"]),
        (["family=nope"], ["'nope'", *FAMILIES]),
        (["model.foo=1"], ["'model.foo'", "objective", "latent_dim"]),
        (["model.objectve=minimax"], ["'model.objectve'", "did you mean 'objective'"]),
        (["model.objective=hinge-ish"], ["'model.objective'", "minimax", "non-saturating"]),
        (["train=5"], ["'train'"]),
    ],
)
def test_bad_values_raise_one_sentence_naming_the_key(overrides, fragments):
    message = config_error("gan", overrides)
    for fragment in fragments:
        assert fragment in message


def test_unknown_preset_suggests_a_near_match():
    with pytest.raises(ConfigError) as error:
        load_config("dcgn")
    message = str(error.value)
    assert "'dcgn'" in message and "'dcgan'" in message and "did you mean" in message.lower()
    assert all(name in message for name in list_presets() + FAMILIES)


def test_unknown_preset_message_is_one_sentence():
    config_error("dcgn")


def test_unknown_preset_without_near_match():
    assert "'zzzzzz'" in config_error("zzzzzz")


def test_missing_family_key(tmp_path):
    path = tmp_path / "nofamily.yaml"
    path.write_text("train:\n  steps: 3\n")
    message = config_error(str(path))
    assert "'family'" in message and all(name in message for name in FAMILIES)
    assert "must be a name" in config_error(str(path), ["family=null"])


def test_invalid_and_missing_yaml_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: gan\ntrain: [1, 2\n")
    assert "bad.yaml" in config_error(str(bad)) and "YAML" in config_error(str(bad))
    assert "missing.yaml" in config_error(str(tmp_path / "missing.yaml"))
    assert "missing.json" in config_error(str(tmp_path / "missing.json"))
    (tmp_path / "latin1.yaml").write_bytes(b"family: gan\n# caf\xe9\n")
    assert "latin1.yaml" in config_error(str(tmp_path / "latin1.yaml"))


def test_empty_yaml_file_means_no_family(tmp_path):
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert "'family'" in config_error(str(tmp_path / "empty.yaml"))


@pytest.mark.parametrize("text", ["- family\n- gan\n", "gan\n"])
def test_yaml_file_that_is_not_a_mapping_raises_config_error(tmp_path, text):
    path = tmp_path / "notamapping.yaml"
    path.write_text(text)
    assert "mapping" in config_error(str(path))


def test_family_that_is_not_a_string_raises_config_error():
    assert "family" in config_error("gan", ["family=[gan]"])


def test_override_into_an_empty_yaml_section(tmp_path):
    path = tmp_path / "empty-model.yaml"
    path.write_text("family: gan\nmodel:\n")
    assert load_config(str(path)).model.objective == "non-saturating"  # None section is fine on its own
    assert load_config(str(path), ["model.objective=minimax"]).model.objective == "minimax"


def test_build_config_rejects_a_non_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        build_config(["family", "gan"])


# ----------------------------------------------------------------------------- frozen and round trip

def test_configs_are_frozen():
    config = load_config("dcgan")
    for section, key, value in ((config, "family", "vae"), (config.train, "steps", 1), (config.data, "root", "/x"),
                                (config.model, "objective", "minimax")):
        with pytest.raises(ValidationError, match="frozen"):
            setattr(section, key, value)
    assert config.train.steps == 5000 and config.model.objective == "non-saturating"


@pytest.mark.parametrize("source", list_presets() + FAMILIES)
def test_json_round_trip_keeps_family_config(source):
    config = load_config(source, ["train.steps=17", "data.image_size=32", "train.ema_decay=0.5"])
    raw = json.loads(config.to_json())
    assert set(raw) == {"family", "model", "data", "train"} and raw["model"] == config.model.model_dump(mode="json")
    again = build_config(raw)
    assert again == config and type(again.model) is type(config.model)
    assert again.to_json() == config.to_json()


def test_round_trip_gan_config_class_and_values():
    config = load_config("gan", ["model.objective=minimax", "model.latent_dim=8"])
    again = build_config(json.loads(config.to_json()))
    assert type(again.model).__name__ == "GANConfig"
    assert (again.model.objective, again.model.latent_dim) == ("minimax", 8)

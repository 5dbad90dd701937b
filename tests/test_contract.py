"""One contract for every registered family: builds, trains 2 steps, checkpoints, reloads to
identical outputs, and each capability it declares returns the right shapes and ranges."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_MODELS, tiny_config

import genzoo
from genzoo.config import build_config, list_presets, load_config
from genzoo.data import build_dataset
from genzoo.models import capabilities
from genzoo.registry import MODELS
from genzoo.train.trainer import Trainer


@pytest.mark.parametrize("family", MODELS.names())
def test_family_contract(family, tmp_path):
    assert family in TINY_MODELS, f"add a tiny config for {family!r} to tests/conftest.py"
    check_contract(tiny_config(family, ema_decay=0.5), tmp_path)


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_passes_the_contract_at_a_tiny_size(preset, tmp_path):
    raw = load_config(preset).model_dump(mode="json")
    tiny = tiny_config(raw["family"], ema_decay=0.5).model_dump(mode="json")
    raw["model"].update(TINY_MODELS[raw["family"]])  # the preset's objective, architecture, conditioning stay
    raw["data"], raw["train"] = tiny["data"], {**raw["train"], **{k: v for k, v in tiny["train"].items() if k != "optimizer"}}
    check_contract(build_config(raw), tmp_path)


def check_contract(config, tmp_path):
    family = config.family
    trainer = Trainer(config, tmp_path / "run", progress=False)
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert set(trainer.model.requires) <= set(trainer.data.keys)
    for phase in trainer.model.phases:
        assert phase.param_group in trainer.groups, f"phase {phase.name} steps an unknown parameter group"
    run = trainer.fit()

    # files of a run folder, and what they say
    for path in (run.config, run.weights, run.state, run.log, run.losses_plot, run.report):
        assert path.is_file(), path
    assert sorted(p.name for p in run.samples.glob("*.png")) == ["step-000001.png", "step-000002.png"]
    records = [json.loads(line) for line in run.log.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    losses = {k: v for r in records for k, v in r.items() if "/" in k}
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(initial[k], v) for k, v in trainer.model.state_dict().items()), "training changed nothing"

    # reload: the saved weights give identical outputs, with and without EMA
    batch = build_dataset(config.data).batch(torch.arange(8))
    x = batch["image"] if "image" in batch else batch["a"]  # (8, 1, 16, 16) in [-1, 1]
    x.labels = batch.get("label")  # conditional models encode and reconstruct with the images' labels
    for ema, reference in ((False, trainer.model), (True, trainer.ema.model)):
        loaded = genzoo.load(run.path, ema=ema)
        reference.eval()
        assert capabilities(loaded) == capabilities(reference)
        for name in capabilities(loaded):
            expected, got = _call(reference, name, x), _call(loaded, name, x)
            assert torch.equal(expected, got), f"{family}.{name} differs after reload (ema={ema})"
    assert genzoo.load(run.path).uses_ema  # EMA weights are the default when present

    # each declared capability: shapes, finiteness, range
    model = genzoo.load(run.path)
    declared = capabilities(model)
    assert declared, f"{family} declares no capability"
    for name in declared:
        out = _call(model, name, x)
        assert torch.isfinite(out).all()
        if name == "encode":
            assert out.ndim == 2 and out.shape[0] == 8
        else:
            assert out.shape[1:] == x.shape[1:] and out.min() >= -1 and out.max() <= 1
    if "generate" in declared:
        assert model.generate(5).shape == (5, 1, 16, 16)


def _call(model, name, x):
    if name == "generate":
        return model.generate(6, generator=torch.Generator().manual_seed(3))
    if getattr(model, "conditional", False) and name in ("encode", "reconstruct"):
        return getattr(model, name)(x, labels=x.labels)
    return getattr(model, name)(x)

"""One contract for every registered family: builds, trains 2 steps, checkpoints, reloads to
identical outputs, and each capability it declares returns the right shapes and ranges.

A new family is covered by registering it and adding its tiny config to `tests/conftest.py`."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_MODELS, tiny_config

import genzoo
from genzoo.api import make_trainer
from genzoo.config import build_config, list_presets, load_config
from genzoo.data import build_dataset
from genzoo.models import capabilities
from genzoo.registry import MODELS


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


def test_families_declare_what_list_shows_without_being_built():
    for name, family in MODELS.items():
        assert family.modality in ("image", "text", "points", "label"), name
        assert family.__doc__ is not None or family.__module__, name
        assert isinstance(family.phase_summary, str) and family.phase_summary, name
        assert capabilities(family), f"{name} declares no capability"


def check_contract(config, tmp_path):
    family = config.family
    trainer = make_trainer(config, tmp_path / "run", progress=False)
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert set(trainer.model.requires) <= set(trainer.data.keys)
    for phase in trainer.model.phases:
        assert phase.param_group in trainer.optimizers.params, f"phase {phase.name} steps an unknown parameter group"
    assert capabilities(trainer.model) == capabilities(type(trainer.model)), "capabilities are methods of the class"
    run = trainer.fit()

    # files of a run folder, and what they say
    for path in (run.config, run.weights, run.state, run.log, run.losses_plot, run.report):
        assert path.is_file(), path
    shows = trainer.model.eval().preview(trainer.preview_batch, 2) is not None  # (eval: batch norm statistics stay)
    assert sorted(p.stem for p in run.samples.iterdir()) == (["step-000001", "step-000002"] if shows else [])
    records = [json.loads(line) for line in run.log.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    losses = {k: v for r in records for k, v in r.items() if "/" in k}
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(initial[k], v) for k, v in trainer.model.state_dict().items()), "training changed nothing"
    saved = json.loads(run.config.read_text())  # the config, with the image size and channels the data decided
    assert saved == trainer.config.model_dump(mode="json")
    assert {**saved, "data": {**saved["data"], "image_size": None, "channels": None}} == \
        {**config.model_dump(mode="json"), "data": {**config.model_dump(mode="json")["data"], "image_size": None, "channels": None}}

    # reload: the saved weights give identical outputs, with and without EMA
    batch = build_dataset(config.data).batch(torch.arange(8))
    for ema, reference in ((False, trainer.model), (True, trainer.ema.model)):
        loaded = genzoo.load(run.path, ema=ema)
        reference.eval()
        assert capabilities(loaded) == capabilities(reference)
        for name in capabilities(loaded):
            expected, got = CALLS[name](reference, batch), CALLS[name](loaded, batch)
            assert torch.equal(expected, got), f"{family}.{name} differs after reload (ema={ema})"
    assert genzoo.load(run.path).uses_ema  # EMA weights are the default when present

    # each declared capability: shapes, finiteness, range
    model = genzoo.load(run.path)
    x = _input(batch)
    for name in capabilities(model):
        out = CALLS[name](model, batch)
        assert torch.isfinite(out.float()).all(), f"{family}.{name} is not finite"
        CHECKS[name](model, out, x)


def _input(batch):
    """The model input of a batch: images (or domain a's), or tokens; None for a batch of rays."""
    return next((batch[key] for key in ("image", "a", "source", "tokens") if key in batch), None)


def _labels(model, batch):
    return {"labels": batch["label"]} if model.conditional and "label" in batch else {}


CALLS = {  # how the contract calls each capability on a batch of 8
    "generate": lambda model, batch: model.generate(6, generator=torch.Generator().manual_seed(3)),
    "reconstruct": lambda model, batch: model.reconstruct(_input(batch), **_labels(model, batch)),
    "encode": lambda model, batch: model.encode(_input(batch), **_labels(model, batch)),
    "translate": lambda model, batch: model.translate(_input(batch), to=1),
    "complete": lambda model, batch: model.complete(_input(batch), _top_half(_input(batch)), generator=torch.Generator().manual_seed(3)),
    "predict": lambda model, batch: model.predict(_input(batch)),
    "nll": lambda model, batch: model.nll(batch, generator=torch.Generator().manual_seed(3)),
    "render": lambda model, batch: model.render(torch.tensor([0.0, 2.0, 4.0]), torch.tensor([0.2, 0.4, 0.6])),
}


def _top_half(x):
    """True where x is known: the top rows of images (B, C, H, W), the first half of token windows (B, L)."""
    mask = torch.zeros_like(x, dtype=torch.bool)
    if x.dim() == 4:
        mask[:, :, : x.shape[2] // 2] = True
    else:
        mask[:, : x.shape[1] // 2] = True
    return mask


def _like_input(model, out, x):
    """Same shape as the input; images in [-1, 1], tokens in the vocabulary."""
    assert out.shape == x.shape
    if model.modality == "text":
        assert out.dtype == torch.long and out.min() >= 0 and out.max() < model.info.vocab_size
    else:
        assert out.min() >= -1 and out.max() <= 1


def _generated(model, out, x):
    if model.modality == "text":
        assert out.shape[0] == 6 and out.dtype == torch.long and out.max() < model.info.vocab_size
    else:
        assert out.shape == (6, *x.shape[1:]) and out.min() >= -1 and out.max() <= 1


CHECKS = {
    "generate": _generated,
    "reconstruct": _like_input,
    "translate": _like_input,
    "complete": _like_input,
    "encode": lambda model, out, x: out.ndim == 2 and out.shape[0] == len(x) or pytest.fail("encode is not (B, D)"),
    "predict": lambda model, out, x: out.shape == (len(x), model.num_classes) or pytest.fail("predict is not (B, K)"),
    "nll": lambda model, out, x: (out.shape == (len(x),) and bool((out > 0).all())) or pytest.fail("nll is not (B,) > 0"),
    "render": lambda model, out, x: (out.shape == (3, model.info.channels, model.info.image_size, model.info.image_size)
                                     and out.min() >= -1 and out.max() <= 1) or pytest.fail("render is not 3 views in [-1, 1]"),
}

"""DANN (Ganin et al. 2016): the gradient-reversal layer's sign and scale, the lambda and learning-rate
schedules, the loss, exact stop/resume mid-schedule, and source/target accuracy through `genzoo eval`."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config
from safetensors.torch import load_file
from test_cli import genzoo
from test_trainer import StopAt

import genzoo as gz
from genzoo.api import make_trainer
from genzoo.config import build_config
from genzoo.data import build_dataset
from genzoo.data.adaptation import SourceTargetData
from genzoo.data.base import ImageData
from genzoo.models.dann import DANN, grl_lambda, lr_factor, reverse_gradient
from genzoo.train.trainer import Trainer


def test_the_gradient_reversal_layer_is_the_identity_forward_and_minus_lambda_backward():
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(5, 3)
    for lambda_ in (0.0, 0.3, 1.0, 2.5):
        y = reverse_gradient(x, lambda_)
        assert torch.equal(y, x)
        (gradient,) = torch.autograd.grad((w * y).sum(), x)
        assert torch.equal(gradient, -lambda_ * w)  # d/dx sum(w * x) = w, reversed and scaled
    # second order: the reversal composes (R_a(R_b(x)) has gradient a * b)
    (gradient,) = torch.autograd.grad((w * reverse_gradient(reverse_gradient(x, 2.0), 0.5)).sum(), x)
    assert torch.equal(gradient, w)


def test_the_schedules_are_the_papers():
    assert grl_lambda(0.0) == 0.0
    assert grl_lambda(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1, abs=1e-15)
    assert grl_lambda(1.0) == pytest.approx(0.9999092042625951, abs=1e-15)
    assert lr_factor(0.0) == 1.0 and lr_factor(1.0) == pytest.approx(11**-0.75, abs=1e-15)
    assert lr_factor(0.2, alpha=10, beta=0.75) == pytest.approx(3**-0.75, abs=1e-15)
    config = tiny_config("dann")
    model = DANN(config.model, build_dataset(config.data).info)
    scheduled = model.schedule(30, 120)
    assert scheduled.values["grl_lambda"] == grl_lambda(0.25) == model.grl_lambda
    assert scheduled.lr["main"] == pytest.approx((1 + 2.5) ** -0.75, rel=1e-15)
    fixed = DANN(config.model.model_copy(update={"grl_lambda": 0.0, "lr_decay": False}), model.info)
    assert fixed.schedule(30, 120).lr == {"main": 1.0} and fixed.grl_lambda == 0.0


def test_the_loss_and_the_reversed_gradient_reach_the_features():
    torch.manual_seed(0)
    config = tiny_config("dann")
    model = DANN(config.model, build_dataset(config.data).info)
    batch = build_dataset(config.data).batch(torch.arange(8))
    model.grl_lambda = 0.7
    losses = model("main", batch)
    features = model.features(torch.cat([batch["source"], batch["target"]]))
    logits, domain = model.label_head(features[:8]), model.domain_head(features).squeeze(1)
    label = F.cross_entropy(logits, batch["source_label"])
    domain_loss = (F.binary_cross_entropy_with_logits(domain[:8], torch.zeros(8))
                   + F.binary_cross_entropy_with_logits(domain[8:], torch.ones(8)))
    assert torch.allclose(losses["total"], label + domain_loss) and torch.allclose(losses["domain"], domain_loss)
    # the features get grad(L_y) - lambda grad(L_d); the domain classifier grad(L_d)
    parameters = list(model.features.parameters()) + list(model.domain_head.parameters())
    got = torch.autograd.grad(losses["total"], parameters)
    from_label = torch.autograd.grad(label, list(model.features.parameters()), retain_graph=True)
    from_domain = torch.autograd.grad(domain_loss, parameters)
    features_count = len(list(model.features.parameters()))
    for i, g in enumerate(got):
        expected = from_label[i] - 0.7 * from_domain[i] if i < features_count else from_domain[i]
        assert torch.allclose(g, expected, atol=1e-6), i


def test_a_run_follows_the_schedules_and_resumes_exactly_mid_schedule(tmp_path):
    config = tiny_config("dann", steps=6, checkpoint_every=100, optimizer="sgd", lr=0.05, momentum=0.9, ema_decay=0.5)
    straight = make_trainer(config, tmp_path / "straight", progress=False).fit()
    records = [json.loads(line) for line in straight.log.read_text().splitlines()]
    assert [r["schedule/grl_lambda"] for r in records] == pytest.approx([grl_lambda(s / 6) for s in range(6)], abs=1e-12)
    state = torch.load(straight.state, weights_only=True)["optimizers"]["main"]
    assert state["param_groups"][0]["lr"] == pytest.approx(0.05 * lr_factor(5 / 6), rel=1e-12)  # the last step's rate
    assert state["param_groups"][0]["momentum"] == 0.9
    with pytest.raises(SystemExit):  # stopped after step 3 of 6
        Trainer(config, tmp_path / "stopped", progress=False, callbacks=[StopAt(3)]).fit()
    done = make_trainer(config, tmp_path / "stopped", resume=True, progress=False).fit()
    expected, got = load_file(str(straight.weights)), load_file(str(done.weights))
    assert expected.keys() == got.keys() and any(k.startswith("ema.") for k in got)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    resumed = torch.load(done.state, weights_only=True)["optimizers"]["main"]
    for index, moments in state["state"].items():
        assert torch.equal(moments["momentum_buffer"], resumed["state"][index]["momentum_buffer"])
    assert gz.load(done.path).grl_lambda == grl_lambda(1.0)  # the model's schedule at the saved step


def test_eval_scores_source_and_target_accuracy_at_the_evaluation_split(tmp_path, capsys):
    run = tmp_path / "run"
    code, out, err = genzoo(capsys, *["train", "dann", "model.width=4", "model.hidden=8", "data.name=fake", "data.image_size=16",
                           "data.max_images=64", "data.target.name=fake", "data.target.max_images=32", "train.steps=2",
                           "train.batch_size=8", "--no-progress", "--out", str(run)])
    assert code == 0 and "carries labels, and this run treats it as unlabelled" in out + err, err
    scores = {s.name: s for s in gz.evaluate(run, ["accuracy"])}  # (fake data has no splits to ask for)
    assert set(scores) == {"source-accuracy", "target-accuracy"}
    assert scores["target-accuracy"].protocol["n_real"] == 512  # all of the target, not the training run's 32
    data = build_config(json.loads((run / "config.json").read_text())).data  # the preset's: 3 channels
    model, target = gz.load(run), build_dataset(data.model_copy(update={"max_images": None})).target_dataset()
    batch = target.batch(torch.arange(len(target)))
    expected = (model.predict(batch["image"]).argmax(1) == batch["label"]).float().mean().item()
    assert scores["target-accuracy"].value == pytest.approx(expected)
    code, out, err = genzoo(capsys, *["eval", str(run), "--metrics", "accuracy"])
    assert code == 0 and "target-accuracy" in out, err


def test_dann_needs_a_target_and_images_of_its_size(tmp_path, capsys):
    code, _, err = genzoo(capsys, *["train", "dann", "data.name=fake", "data.image_size=16", "data.target=null", "--out", str(tmp_path / "a")])
    assert code == 2 and "data.target=NAME" in err and not (tmp_path / "a").exists()
    code, _, err = genzoo(capsys, *["train", "dann", "data.name=digits", "data.target=fake", "--out", str(tmp_path / "b")])
    assert code == 2 and "at least 16 px" in err


def test_a_labelled_target_is_warned_about_and_its_labels_never_reach_a_batch():
    config = build_config({"family": "dann", "data": {"name": "fake", "image_size": 16, "max_images": 32,
                                                      "target": {"name": "fake", "max_images": 16}}}).data
    labelled = build_dataset(config)
    assert labelled.target_labels is not None and any("carries labels" in note for note in labelled.notes)
    target = labelled.target_data
    unlabelled = SourceTargetData(labelled.source_data, ImageData(target.images, None, source=target.source))
    assert not any("carries labels" in note for note in unlabelled.notes)
    indices = torch.arange(len(labelled))
    with_labels, without = labelled.batch(indices), unlabelled.batch(indices)
    assert set(with_labels) == {"source", "source_label", "target"}  # no target label key
    for key in with_labels:  # the same batches whether the target has labels or not
        assert torch.equal(with_labels[key], without[key]), key

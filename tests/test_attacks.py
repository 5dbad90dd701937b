"""Adversarial examples: known answers (FGSM on a linear model, the projections), the checks that an
attack really attacks (no gradient masking), agreement with torchattacks, adversarial training, and
the accuracy metrics."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import tiny_config
from genzoo.attacks import attack, fgsm, pgd, project
from genzoo.errors import GenzooError


def _linear(weight: torch.Tensor, bias: torch.Tensor):  # noqa: ANN202
    return lambda x: x.flatten(1) @ weight.T + bias  # (B, D) -> (B, K)


def test_fgsm_on_a_linear_model_moves_each_pixel_by_2eps_along_the_sign_of_the_weight_difference():
    torch.manual_seed(0)
    weight, bias = torch.randn(2, 12), torch.zeros(2)
    x, labels = torch.zeros(3, 1, 2, 6), torch.tensor([0, 1, 0])
    x_adv = fgsm(_linear(weight, bias), x, labels, eps=0.1)
    # CE gradient in x: sum_k (p_k - [k = y]) w_k = p_other (w_other - w_y): its sign is sign(w_other - w_y)
    for i, y in enumerate(labels.tolist()):
        expected = 0.2 * torch.sign(weight[1 - y] - weight[y])  # 2 eps in [-1, 1] image units
        torch.testing.assert_close(x_adv[i].flatten(), expected)
    targeted = fgsm(_linear(weight, bias), x, labels, eps=0.1, target=torch.tensor([1, 1, 1]))
    for row in targeted:  # descending the loss of class 1: towards it, whatever the true label
        torch.testing.assert_close(row.flatten(), 0.2 * torch.sign(weight[1] - weight[0]))
    l2 = fgsm(_linear(weight, bias), x, labels, eps=0.1, norm="l2")
    direction = weight[1] - weight[0]
    torch.testing.assert_close(l2[0].flatten(), 0.2 * direction / direction.norm())


def test_projection_onto_the_linf_ball_and_the_box():
    x = torch.tensor([[-0.95, 0.0, 0.5, 0.9]]).view(1, 1, 1, 4)
    x_adv = torch.tensor([[-1.5, 0.05, 0.0, 1.3]]).view(1, 1, 1, 4)
    # eps 0.1 -> radius 0.2 in image units: clamp to [x - 0.2, x + 0.2], then to [-1, 1]
    torch.testing.assert_close(project(x_adv, x, 0.1, "linf").flatten(), torch.tensor([-1.0, 0.05, 0.3, 1.0]))


def test_projection_onto_the_l2_ball_scales_the_perturbation_and_keeps_small_ones():
    x = torch.zeros(2, 1, 1, 2)
    x_adv = torch.tensor([[3.0, 4.0], [0.03, 0.04]]).view(2, 1, 1, 2) / 10  # norms 0.5 and 0.005
    out = project(x_adv, x, 0.1, "l2").view(2, 2)  # radius 0.2
    torch.testing.assert_close(out[0], torch.tensor([0.12, 0.16]))  # (0.3, 0.4) * 0.2 / 0.5
    torch.testing.assert_close(out[1], torch.tensor([0.003, 0.004]))  # inside: unchanged


@pytest.fixture(scope="module")
def digits_model():
    """A small MLP on scikit-learn's 8 x 8 digits (about 97% train accuracy after 150 full-batch steps), in eval mode."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 8 - 1  # (1797, 1, 8, 8) in [-1, 1]
    y = torch.tensor(data.target)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(150):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval().requires_grad_(False)
    return model, x[:200], y[:200]


def _accuracy(model, x, y) -> float:  # noqa: ANN001
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_attacks_work_accuracy_falls_with_eps_steps_and_restarts_never_help_and_large_eps_gives_zero(digits_model):
    model, x, y = digits_model
    clean = _accuracy(model, x, y)
    assert clean > 0.9
    for method in ("fgsm", "pgd"):
        curve = [_accuracy(model, attack(model, x, y, method, eps, steps=10, step_size=eps / 4,
                                         generator=torch.Generator().manual_seed(0)), y)
                 for eps in (0.0, 0.02, 0.05, 0.1, 0.2)]
        assert curve[0] == clean and all(a >= b for a, b in zip(curve, curve[1:])), (method, curve)
        assert curve[-1] < 0.5 * clean, (method, curve)

    def pgd_accuracy(steps: int, restarts: int) -> float:
        return _accuracy(model, pgd(model, x, y, 0.05, steps, 0.01, restarts=restarts,
                                    generator=torch.Generator().manual_seed(0)), y)

    few, many, restarted = pgd_accuracy(5, 1), pgd_accuracy(20, 1), pgd_accuracy(20, 3)
    assert many <= few and restarted <= many, (few, many, restarted)
    assert _accuracy(model, pgd(model, x, y, 1.0, 20), y) == 0.0  # the whole box: every image can be changed
    fgsm_accuracy = _accuracy(model, fgsm(model, x, y, 0.05), y)
    assert many <= fgsm_accuracy  # the iterative attack is at least as strong as one step


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_every_perturbation_stays_in_the_ball_and_the_box_exactly(digits_model, norm):
    model, x, y = digits_model
    for method in ("fgsm", "bim", "pgd"):
        x_adv = attack(model, x, y, method, 0.3, norm=norm, steps=5, generator=torch.Generator().manual_seed(1))
        assert x_adv.min() >= -1 and x_adv.max() <= 1
        if norm == "linf":  # the clamp bounds, computed as the projection computes them
            assert (x_adv >= x - 0.6).all() and (x_adv <= x + 0.6).all()
        else:
            assert ((x_adv - x).flatten(1).norm(dim=1) <= 0.6 * (1 + 1e-6)).all()


def test_agreement_with_torchattacks_fgsm_bim_and_pgd_from_the_same_random_start(digits_model):
    """The same arithmetic in both: the digits' pixels (k/16), eps = 1/8 and alpha = 1/32 are exact in
    binary in both unit systems, so FGSM and BIM agree bit for bit; from a random start the images
    differ by rounding (x vs (x + 1) / 2), which may flip the sign of a gradient that is ~0."""
    import torchattacks

    model, x, y = digits_model
    on_01 = nn.Sequential(_Affine(2.0, -1.0), model).eval()  # torchattacks' images are in [0, 1]
    x01 = (x + 1) / 2
    ours = fgsm(model, x, y, 0.125)
    theirs = torchattacks.FGSM(on_01, eps=0.125)(x01, y)
    assert torch.equal((ours + 1) / 2, theirs)
    ours = pgd(model, x, y, 0.125, steps=7, step_size=1 / 32, random_start=False, keep_best=False)
    theirs = torchattacks.BIM(on_01, eps=0.125, alpha=1 / 32, steps=7)(x01, y)
    assert torch.equal((ours + 1) / 2, theirs)
    torch.manual_seed(5)  # both draw the start from the global generator: U(-eps, eps) per pixel
    ours = pgd(model, x, y, 0.125, steps=7, step_size=1 / 32, keep_best=False)
    torch.manual_seed(5)
    theirs = torchattacks.PGD(on_01, eps=0.125, alpha=1 / 32, steps=7, random_start=True)(x01, y)
    differ = ((ours + 1) / 2 - theirs).abs() > 1e-5
    assert differ.float().mean() < 1e-3, differ.sum()


class _Affine(nn.Module):
    def __init__(self, scale: float, shift: float) -> None:
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def test_bad_attack_settings_are_one_sentence(digits_model):
    model, x, y = digits_model
    with pytest.raises(GenzooError, match="negative"):
        fgsm(model, x, y, -0.1)
    with pytest.raises(GenzooError, match="unknown attack"):
        attack(model, x, y, "deepfool", 0.1)
    training = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).train()
    with pytest.raises(GenzooError, match="training mode"):
        attack(training, x, y, "fgsm", 0.1, module=training)


def test_the_adversarial_training_step_is_the_cross_entropy_on_pgd_examples_made_in_eval_mode():
    from genzoo.data import build_dataset
    from genzoo.registry import MODELS

    config = tiny_config("classifier", model={"adversarial": {"eps": 0.1, "steps": 3}, "dropout": 0.0})
    data = build_dataset(config.data)
    model = MODELS.get("classifier")(config.model, data.info)
    batch = data.batch(torch.arange(8))
    model.train()
    reference = copy.deepcopy(model)
    torch.manual_seed(3)
    out = model("main", batch)
    assert model.training  # restored after the attack
    reference.logits(batch["image"])  # the clean forward in training mode moves the batch-norm statistics first
    torch.manual_seed(3)
    reference.eval()
    x_adv = pgd(reference.logits, batch["image"], batch["label"], 0.1, 3, keep_best=False)  # the same random start
    reference.train()
    expected = F.cross_entropy(reference.logits(x_adv), batch["label"])
    torch.testing.assert_close(out["total"], expected)
    assert (x_adv - batch["image"]).abs().max() <= 0.2 + 1e-6 and not torch.equal(x_adv, batch["image"])
    out["total"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_accuracy_metrics_score_a_classifier_run_and_refuse_a_generator(tmp_path):
    from genzoo.api import make_trainer
    from genzoo.metrics import evaluate

    run = make_trainer(tiny_config("classifier"), tmp_path / "clf", progress=False).fit()
    scores = {s.name: s for s in evaluate(run.path, ["accuracy", "robust-accuracy"], num_real=32)}
    assert 0 <= scores["accuracy"].value <= 1 and 0 <= scores["robust-accuracy"].value <= scores["accuracy"].value
    assert scores["accuracy"].protocol["n_real"] == 32 and scores["robust-accuracy"].protocol["attack"]["eps"] == 0.1
    gan = make_trainer(tiny_config("gan"), tmp_path / "gan", progress=False).fit()
    with pytest.raises(GenzooError, match="classifies"):
        evaluate(gan.path, ["accuracy"], num_samples=32)


def test_attack_command_on_a_classifier_run_reports_curve_pictures_and_is_exactly_reproducible(tmp_path, capsys):
    from genzoo.api import make_trainer
    from test_cli import genzoo

    run = make_trainer(tiny_config("classifier"), tmp_path / "clf", progress=False).fit()
    args = ["attack", run.path, "--method", "pgd", "--eps", "0.05", "--steps", "3", "-n", "16", "--restarts", "2",
            "--curve", "0,0.05,0.5", "--targeted", "1", "--no-progress"]
    for name in ("a", "b"):
        code, out, err = genzoo(capsys, *args, "--out", tmp_path / name)
        assert code == 0, err
    assert "accuracy_before" in out and "target_rate" in out
    a, b = (tmp_path / "a" / "adversarial.safetensors").read_bytes(), (tmp_path / "b" / "adversarial.safetensors").read_bytes()
    assert a == b
    result = json.loads((tmp_path / "a" / "result.json").read_text())
    curve = json.loads((tmp_path / "a" / "curve.json").read_text())
    assert [row["eps"] for row in curve] == [0, 0.05, 0.5] and curve[0]["accuracy"] == result["accuracy_before"]
    assert curve[1]["accuracy"] == result["accuracy_after"] and result["linf_max"] <= 0.05 + 1e-6
    assert {"examples.png", "accuracy_vs_eps.png"} <= {p.name for p in (tmp_path / "a" / "pictures").iterdir()}
    records = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3] and "attack/loss" in records[0]

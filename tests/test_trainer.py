"""The trainer's contract beyond one phase: schedules recomputed every step (and exact across a stop
and resume), per-group optimizer settings, phases that run every k steps, the batch layout on any
batch keys, one writer per run folder, sizes that cannot fit, and the global state a run leaves."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from safetensors.torch import load_file, save_file
from torchvision.utils import save_image
from test_cli import genzoo

import genzoo as gz
from genzoo.api import make_trainer
from genzoo.errors import ConfigError, GenzooError
from genzoo.train.callbacks import Callback
from genzoo.train.optim import run_schedule
from genzoo.train.trainer import Trainer

LAZY_R1 = {"r1_gamma": 1.0, "r1_every": 2}
QUIET = {"sample_every": 1000, "checkpoint_every": 1000}  # no previews or checkpoints in between
SMALL_GAN = {"model": {**LAZY_R1, "architecture": "mlp"}, "data": {"image_size": 8}}  # ~10 ms a step


def test_run_schedules_known_values():
    assert run_schedule("constant", 5, 10, 0) == 1.0
    assert run_schedule("linear", 5, 10, 0) == pytest.approx(0.5)
    assert run_schedule("cosine", 0, 10, 0) == pytest.approx(1.0)
    assert run_schedule("cosine", 5, 10, 0) == pytest.approx(0.5)
    assert run_schedule("constant", 1, 10, 4) == pytest.approx(0.5)  # warm-up: (1 + 1) / 4
    assert run_schedule("linear", 2, 10, 4) == pytest.approx(0.75 * 0.8)


def test_rates_follow_the_run_and_family_schedules_and_group_settings(tmp_path):
    config = tiny_config("gan", model=LAZY_R1, steps=3, lr=1e-3, lr_schedule="cosine", warmup_steps=2,
                         betas=[0.5, 0.99], group_lr={"generator": 4e-3})
    trainer = make_trainer(config, tmp_path / "run", progress=False)
    c = 2 / 3  # lazy R1 every 2 steps: Karras et al. (2020), Appendix B, c = k / (k + 1)
    discriminator, generator = trainer.optimizers["discriminator"], trainer.optimizers["generator"]
    assert discriminator.param_groups[0]["betas"] == pytest.approx((0.5**c, 0.99**c))
    assert generator.param_groups[0]["betas"] == (0.5, 0.99)
    trainer.fit()
    factor = run_schedule("cosine", 2, 3, 2)  # the rates of the last step, after 2 of 3 steps
    assert discriminator.param_groups[0]["lr"] == pytest.approx(1e-3 * c * factor)
    assert generator.param_groups[0]["lr"] == pytest.approx(4e-3 * factor)  # train.group_lr instead of train.lr


def test_an_unknown_parameter_group_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a parameter group of this model; its groups are: discriminator, generator"):
        make_trainer(tiny_config("gan", group_lr={"critic": 1e-4}), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_phase_every_k_steps_is_logged_as_the_mean_of_its_own_runs(tmp_path):
    # 80 steps: a run logs at least 20 records (train/log.py), so log_every=4 holds from 80 steps on
    every_step = make_trainer(tiny_config("gan", **SMALL_GAN, steps=80, log_every=1, **QUIET), tmp_path / "a", progress=False).fit()
    per_step = [json.loads(line) for line in every_step.log.read_text().splitlines()][:4]
    assert ["r1/r1" in r for r in per_step] == [False, True, False, True]  # runs on steps 2 and 4 only
    pooled = make_trainer(tiny_config("gan", **SMALL_GAN, steps=80, log_every=4, **QUIET), tmp_path / "b", progress=False).fit()
    record = json.loads(pooled.log.read_text().splitlines()[0])
    assert record["step"] == 4
    assert record["r1/r1"] == pytest.approx((per_step[1]["r1/r1"] + per_step[3]["r1/r1"]) / 2, rel=1e-6)
    assert record["generator/total"] == pytest.approx(sum(r["generator/total"] for r in per_step) / 4, rel=1e-6)


def test_a_family_schedule_is_logged_and_set_again_on_load(tmp_path):
    run = make_trainer(tiny_config("gan", model={"instance_noise": 0.5}, steps=4, log_every=1), tmp_path / "run",
                       progress=False).fit()
    noise = [json.loads(line)["schedule/instance_noise"] for line in run.log.read_text().splitlines()]
    assert noise == pytest.approx([0.5, 0.375, 0.25, 0.125])  # sigma_0 (1 - step / total) before each step
    assert gz.load(run.path).noise_std == 0.0  # the model as it stands after the 4 steps


class StopAt(Callback):
    """Asks the run to stop after step `step`, as SIGTERM would: it saves a checkpoint and stops."""

    every = 1

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer) -> None:
        if trainer.step == self.step:
            trainer.request_stop(signal.SIGTERM)


@pytest.mark.parametrize("family, model, train", [
    ("gan", {**LAZY_R1, "instance_noise": 0.3}, {"lr_schedule": "cosine", "warmup_steps": 3, "ema_decay": 0.9}),
    ("classifier", {}, {"lr_schedule": "linear", "group_lr": {"main": 1e-3}}),
])
def test_a_scheduled_run_stopped_and_resumed_equals_one_straight_through(family, model, train, tmp_path):
    config = tiny_config(family, model=model, steps=6, checkpoint_every=100, **train)
    straight = make_trainer(config, tmp_path / "straight", progress=False).fit()
    with pytest.raises(SystemExit):  # stopped after step 3 of 6: the schedule's total stays 6
        Trainer(config, tmp_path / "stopped", progress=False, callbacks=[StopAt(3)]).fit()
    assert torch.load(tmp_path / "stopped" / "training_state.pt", weights_only=True)["step"] == 3
    done = make_trainer(config, tmp_path / "stopped", resume=True, progress=False).fit()
    expected, got = load_file(str(straight.weights)), load_file(str(done.weights))
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    a = torch.load(straight.state, weights_only=True)["optimizers"]
    b = torch.load(done.state, weights_only=True)["optimizers"]
    for group in a:
        assert a[group]["param_groups"][0]["lr"] == b[group]["param_groups"][0]["lr"]
        for index, moments in a[group]["state"].items():
            for name, value in moments.items():
                assert torch.equal(value, b[group]["state"][index][name]), (group, index, name)
    steps = [json.loads(line)["step"] for line in done.log.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_channels_last_batches_work_for_any_batch_keys(tmp_path):
    """The layout the convolutions run in on CUDA, forced on the CPU: two-domain batches (a, b) too."""
    run = make_trainer(tiny_config("swap", channels_last=True), tmp_path / "run", progress=False).fit()
    assert gz.load(run.path).translate(torch.zeros(2, 1, 16, 16), to="a").shape == (2, 1, 16, 16)


def test_a_run_leaves_the_global_deterministic_setting_as_it_was(tmp_path):
    assert not torch.are_deterministic_algorithms_enabled()
    make_trainer(tiny_config("vae", deterministic=True), tmp_path / "run", progress=False).fit()
    assert not torch.are_deterministic_algorithms_enabled()


def test_evaluating_a_likelihood_leaves_the_global_random_state_alone(tmp_path):
    run = make_trainer(tiny_config("vae"), tmp_path / "run", progress=False).fit()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = gz.evaluate(run.path, ["elbo"], num_samples=16)[0].value
    assert torch.equal(torch.get_rng_state(), before)
    assert gz.evaluate(run.path, ["elbo"], num_samples=16)[0].value == first  # its own seeded generator


def test_the_classifier_learns_its_training_labels(tmp_path):
    config = tiny_config("classifier", model={"width": 8, "dropout": 0.0}, data={"max_images": 256}, steps=150, lr=2e-3,
                         lr_schedule="linear", log_every=150)  # (the decay lets batch norm's running statistics settle)
    run = make_trainer(config, tmp_path / "run", progress=False).fit()
    model = gz.load(run.path)
    data = gz.data.build_dataset(config.data)
    batch = data.batch(torch.arange(len(data)))
    accuracy = (model.predict(batch["image"]).argmax(1) == batch["label"]).float().mean().item()
    assert accuracy > 0.85  # big vs small blobs (0.92 when written)


def test_old_run_folders_with_fewer_data_fields_still_load(tmp_path):
    run = make_trainer(tiny_config("vae", steps=1), tmp_path / "run", progress=False).fit()
    tensors, metadata = run.read_weights(run.weights)
    metadata["data_info"] = {"channels": 1, "image_size": 16, "num_classes": 2, "num_images": 64}  # as wave 1 wrote it
    from genzoo.io import tensors_sha256

    metadata["tensors_sha256"] = tensors_sha256(tensors)
    save_file(tensors, str(run.weights), metadata={k: json.dumps(v) for k, v in metadata.items()})
    assert gz.load(run.path).generate(2).shape == (2, 1, 16, 16)


# ----------------------------------------------------------------------------- sizes that cannot fit


@pytest.mark.parametrize("overrides, what", [
    ({"data": {"image_size": 40000}}, "would need"),
    ({"train": {"batch_size": 10**12}}, "would need"),
])
def test_a_size_that_cannot_fit_is_refused_before_anything_is_allocated(overrides, what, tmp_path, capsys):
    items = [f"{section}.{key}={value}" for section, values in overrides.items() for key, value in values.items()]
    code, _, err = genzoo(capsys, "train", "vae", "data.name=fake", "data.max_images=64", "model.latent_dim=4",
                          "model.width=4", *items, "--out", tmp_path / "run", "--no-progress")
    assert code == 2 and what in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- one writer per run folder


def _start(tmp_path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "genzoo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)


TRAIN_SLOWLY = ["vae", "data.name=fake", "data.image_size=16", "data.max_images=64", "model.latent_dim=4", "model.width=4",
                "train.batch_size=8", "train.steps=100000", "train.checkpoint_every=5", "train.log_every=5", "--no-progress"]


def test_a_second_writer_is_refused_naming_the_first_and_a_killed_writer_blocks_nothing(tmp_path):
    run = tmp_path / "run"
    first = _start(tmp_path, "train", *TRAIN_SLOWLY, "--out", str(run))
    try:
        deadline = time.time() + 120
        while not (run / "model.safetensors").exists():  # training, with a checkpoint
            assert first.poll() is None and time.time() < deadline, first.stderr.read() if first.poll() is not None else "slow"
            time.sleep(0.2)
        second = subprocess.run([sys.executable, "-m", "genzoo", "resume", str(run), "--no-progress"], capture_output=True,
                                text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert f"is in use by process {first.pid}" in second.stderr and len(second.stderr.strip().splitlines()) == 1
        # readers are not writers: sampling the run while it trains works
        sample = subprocess.run([sys.executable, "-m", "genzoo", "sample", str(run), "-n", "4", "-o", str(tmp_path / "s.png")],
                                capture_output=True, text=True, timeout=120)
        assert sample.returncode == 0, sample.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # one writer: every logged step once
    resumed = subprocess.run([sys.executable, "-m", "genzoo", "resume", str(run), "--steps", str(max(steps) + 5),
                              "--no-progress"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr  # the kernel dropped the dead process's lock


def test_procedure_runs_end_to_end_through_the_cli(tmp_path, capsys):
    run = make_trainer(tiny_config("gan"), tmp_path / "gan", progress=False).fit()
    code, out, err = genzoo(capsys, "run", "invert", f"run={run.path}", "steps=10", "num_images=4", "--out",
                            tmp_path / "inv", "--no-progress")
    assert code == 0, err
    folder = tmp_path / "inv"
    result = json.loads((folder / "result.json").read_text())
    assert result["images"] == 4 and 0 <= result["mse"] < 1 and math.isfinite(result["final_loss"])
    for name in ("config.json", "log.jsonl", "losses.png", "report.html", "pictures/inversions.png", "codes.safetensors"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "config.json").read_text())["procedure"] == "invert"
    assert len((folder / "log.jsonl").read_text().splitlines()) == 10
    assert "mse:" in out and "report:" in out
    code, _, err = genzoo(capsys, "run", "invert", f"run={run.path}", "--out", tmp_path / "inv", "--no-progress")
    assert code == 2 and "already holds a run" in err


def test_inversion_finds_codes_for_images_the_model_itself_made(tmp_path):
    run = make_trainer(tiny_config("vae", model={"width": 8}, steps=60, lr=2e-3, log_every=60), tmp_path / "vae",
                       progress=False).fit()
    images = gz.load(run.path).generate(4, generator=torch.Generator().manual_seed(5))  # in the decoder's range
    (tmp_path / "made").mkdir()
    for index, image in enumerate(images):
        save_image((image + 1) / 2, tmp_path / "made" / f"{index}.png")
    folder = gz.run_procedure("invert", tmp_path / "inv", overrides=[f"run={run.path}", f"images={tmp_path / 'made'}",
                                                                     "steps=100"], progress=False)
    losses = [json.loads(line)["invert/loss"] for line in (folder.path / "log.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.1 * losses[0]  # 0.20 -> 0.0012 when written


@pytest.mark.parametrize("settings, message", [
    (["steps=10"], "config key 'run' is required"),
    (["run=RUN", "stepz=3"], "unknown config key 'stepz' (did you mean 'steps'?)"),
    (["run=RUN", "steps=0"], "'steps' = 0 is invalid"),
    (["run=CLASSIFIER"], "has no latent space"),
    (["run=RUN", "images=MISSING"], "does not exist"),
])
def test_procedure_mistakes_end_in_one_sentence(settings, message, tmp_path, capsys):
    run = make_trainer(tiny_config("vae", steps=1), tmp_path / "vae", progress=False).fit()
    classifier = make_trainer(tiny_config("classifier", steps=1), tmp_path / "cls", progress=False).fit()
    names = {"RUN": str(run.path), "CLASSIFIER": str(classifier.path), "MISSING": str(tmp_path / "missing")}
    items = [item.split("=")[0] + "=" + names.get(item.split("=")[1], item.split("=")[1]) for item in settings]
    code, _, err = genzoo(capsys, "run", "invert", *items, "--out", tmp_path / "inv", "--no-progress")
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "inv").exists()


def test_an_unknown_procedure_lists_the_known_ones(capsys):
    from genzoo.registry import PROCEDURES

    code, _, err = genzoo(capsys, "run", "stylise")
    known = ", ".join(sorted(PROCEDURES.names()))
    assert code == 2 and f"unknown procedure 'stylise'; known procedures: {known}." in err
    assert "invert" in known


def test_a_model_with_no_capability_to_show_writes_no_sample_grid(tmp_path):
    run = make_trainer(tiny_config("classifier"), tmp_path / "run", progress=False).fit()
    assert list(run.samples.iterdir()) == [] and run.report.is_file()


def test_the_lock_is_released_when_building_a_trainer_fails(tmp_path):
    run = make_trainer(tiny_config("vae", steps=1), tmp_path / "run", progress=False).fit()
    with pytest.raises(GenzooError, match="fewer than one batch"):  # fails after the lock was taken
        make_trainer(tiny_config("vae", steps=2, data={"max_images": 4}), run.path, resume=True, progress=False)
    make_trainer(tiny_config("vae", steps=2), run.path, resume=True, progress=False).fit()  # not blocked


def test_the_feature_network_script_runs_as_documented(tmp_path):
    """`python -m genzoo.metrics.fmnist_net` (how the shipped fmnist weights were made), on 256 images."""
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists():
        pytest.fail("install the Debian package dataset-fashion-mnist (CI does): the script needs the train split")
    result = subprocess.run([sys.executable, "-m", "genzoo.metrics.fmnist_net", "--epochs", "1", "--batch-size", "64",
                             "--max-images", "256", "--out", str(tmp_path / "net.safetensors")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout[result.stdout.index("{"):])["train_images"] == 256
    from genzoo.metrics.features import load_features

    assert load_features("fmnist", str(tmp_path / "net.safetensors")).feature_dim == 128


def test_genzoo_train_is_the_api_function_even_after_the_train_package_was_imported(tmp_path):
    import genzoo.train.trainer  # noqa: F401  (binds genzoo.train to the package)

    run = gz.train("vae", tmp_path / "run", steps=1, progress=False, overrides={
        "data.name": "fake", "data.image_size": 16, "data.max_images": 64, "train.batch_size": 8,
        "model.latent_dim": 4, "model.width": 4})
    assert run.weights.is_file()


class FailAt(Callback):
    """An evaluation that fails after step `step` (a metric that cannot run, a full disk)."""

    every = 1

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer) -> None:
        if trainer.step == self.step:
            raise GenzooError("this metric cannot score the data")


def test_a_failing_callback_keeps_the_steps_trained_since_the_last_checkpoint(tmp_path):
    config = tiny_config("vae", steps=4, checkpoint_every=100)
    with pytest.raises(GenzooError, match="cannot score"):
        Trainer(config, tmp_path / "run", progress=False, callbacks=[FailAt(3)]).fit()
    state = torch.load(tmp_path / "run" / "training_state.pt", weights_only=True)
    assert state["step"] == 3  # saved after the failure, though no checkpoint was due before step 4
    straight = make_trainer(config, tmp_path / "straight", progress=False).fit()
    resumed = make_trainer(config, tmp_path / "run", resume=True, progress=False).fit()
    expected, got = load_file(str(straight.weights)), load_file(str(resumed.weights))
    assert all(torch.equal(expected[key], got[key]) for key in expected)  # and the run ends as one straight through

"""Checkpoints that survive faults: atomic saves (a crash at every step of a save leaves the old or
the new checkpoint, never a mix), checksums that catch damaged files (resume falls back to the
previous checkpoint with a note), divergence handling (rollback or stop; nothing non-finite is ever
written), safe loading (a pickle that would run code is refused) and failing writes (a full disk
leaves the run folder as it was and stops with one sentence, exit code 2)."""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from safetensors.torch import save_file
from test_cli import TINY_VAE, genzoo

import genzoo as gz
from genzoo.errors import CheckpointError, GenzooError
from genzoo.train import checkpoint as checkpoint_module
from genzoo.train.checkpoint import RunFolder
from genzoo.api import make_trainer
from genzoo.train.trainer import TrainingDiverged

REPO = Path(__file__).resolve().parents[1]


class Crash(BaseException):
    """A process dying at this instant (nothing after it runs, no cleanup by genzoo's code)."""


def assert_one_sentence(text: str) -> None:
    text = text.strip().removeprefix("error:").strip()
    assert text.endswith(".") and not re.search(r"[.;]\s+[A-Z]", text) and "Traceback" not in text, text


def checkpoint_files(run: Path) -> dict[str, bytes]:
    names = ("model.safetensors", "training_state.pt", "model.previous.safetensors", "training_state.previous.pt")
    return {name: (run / name).read_bytes() for name in names if (run / name).exists()}


def fake_checkpoint(step: int) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """Tensors and state that say which step they are from."""
    tensors = {"weight": torch.full((3, 4), float(step)), "ema.weight": torch.full((3, 4), step + 0.5)}
    return tensors, {"family": "vae", "step": step}, {"step": step, "moments": torch.full((5,), float(step))}


def assert_consistent(found, steps: set[int]) -> None:
    """A checkpoint read back is one save's weights with that save's state, never a mix."""
    step = found.metadata["step"]
    assert step in steps and found.state["step"] == step
    assert torch.equal(found.tensors["weight"], torch.full((3, 4), float(step)))
    assert torch.equal(found.state["moments"], torch.full((5,), float(step)))


# ----------------------------------------------------------------------------- atomic saves


@pytest.mark.parametrize("crash_at", range(5))
def test_a_crash_at_any_rename_of_a_save_leaves_the_old_or_the_new_checkpoint(crash_at, tmp_path, monkeypatch):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.save_checkpoint(*fake_checkpoint(1))
    run.save_checkpoint(*fake_checkpoint(2))
    renames, real_replace = [], os.replace

    def replace_then_crash(source, target):
        if len(renames) == crash_at:
            raise Crash
        renames.append((Path(source).name, Path(target).name))
        real_replace(source, target)

    monkeypatch.setattr(checkpoint_module.os, "replace", replace_then_crash)
    try:
        run.save_checkpoint(*fake_checkpoint(3))
    except Crash:
        pass
    monkeypatch.undo()
    found = run.load_checkpoint(note=None)
    assert_consistent(found, {2, 3})
    assert found.metadata["step"] == (3 if crash_at == 4 else 2)
    if crash_at == 4:  # a whole save: the one before is the previous checkpoint
        assert len(renames) == 4 and run.load_checkpoint(note=None, before_step=3).metadata["step"] == 2
    run.save_checkpoint(*fake_checkpoint(4))  # saving after the crash keeps two intact checkpoints
    assert_consistent(run.load_checkpoint(note=None), {4})
    assert_consistent(run.load_checkpoint(note=None, before_step=4), {2, 3})


@pytest.mark.parametrize("crash_at", range(2))
def test_a_crash_while_dropping_an_abandoned_checkpoint_leaves_the_older_one(crash_at, tmp_path, monkeypatch):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.save_checkpoint(*fake_checkpoint(1))
    run.save_checkpoint(*fake_checkpoint(2))
    older = run.load_checkpoint(note=None, before_step=2)
    calls, real_replace = [], os.replace

    def replace_then_crash(source, target):
        if len(calls) == crash_at:
            raise Crash
        calls.append(1)
        real_replace(source, target)

    monkeypatch.setattr(checkpoint_module.os, "replace", replace_then_crash)
    with pytest.raises(Crash):
        run.make_latest(older)
    monkeypatch.undo()
    assert_consistent(run.load_checkpoint(note=None), {1} if crash_at else {1, 2})
    run.make_latest(run.load_checkpoint(note=None, before_step=2))
    assert_consistent(run.load_checkpoint(note=None), {1})


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flip":  # one byte in the last tensor's data: the file still parses
        path.write_bytes(data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:])
    else:
        path.write_bytes(b"")


@pytest.mark.parametrize("file, how", [("model.safetensors", "truncate"), ("model.safetensors", "flip"),
                                       ("model.safetensors", "empty"), ("training_state.pt", "truncate"),
                                       ("training_state.pt", "flip")])
def test_a_damaged_checkpoint_is_caught_and_the_previous_one_used(file, how, tmp_path):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.save_checkpoint(*fake_checkpoint(1))
    run.save_checkpoint(*fake_checkpoint(2))
    damage(run.path / file, how)
    notes: list[str] = []
    found = run.load_checkpoint(note=notes.append)
    assert_consistent(found, {1})
    assert len(notes) == 1 and file.split(".")[0] in notes[0] and "previous checkpoint (step 1)" in notes[0]
    damage(run.previous_weights, how)  # both damaged: one sentence, no fallback left
    damage(run.previous_state, how)
    with pytest.raises(CheckpointError) as error:
        run.load_checkpoint(note=None)
    assert_one_sentence(str(error.value))
    assert "no intact checkpoint" in str(error.value)


def test_resume_of_a_damaged_run_continues_from_the_previous_checkpoint(tmp_path, capsys):
    code, _, err = genzoo(capsys, "train", *TINY_VAE, "train.steps=3", "train.checkpoint_every=2", "--out", tmp_path / "vae")
    assert code == 0, err
    damage(tmp_path / "vae" / "model.safetensors", "flip")
    code, out, err = genzoo(capsys, "resume", tmp_path / "vae", "--steps", "4", "--no-progress")
    assert code == 0, err
    assert "model.safetensors is damaged" in err and "previous checkpoint (step 2)" in err
    steps = [json.loads(line)["step"] for line in (tmp_path / "vae" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # steps 3 and 4 trained again from step 2


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(tmp_path, capsys):
    code, _, err = genzoo(capsys, "train", *TINY_VAE, "--out", tmp_path / "vae")
    assert code == 0, err
    for name in ("model.safetensors", "training_state.pt"):  # what a kill before the first checkpoint leaves
        (tmp_path / "vae" / name).unlink()
    code, _, err = genzoo(capsys, "resume", tmp_path / "vae", "--no-progress")
    assert code == 0, err
    assert "no checkpoint yet" in err and "starting from step 0" in err
    steps = [json.loads(line)["step"] for line in (tmp_path / "vae" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2]


def test_load_falls_back_to_the_previous_weights_with_a_note_and_fails_in_one_sentence(tmp_path, capsys):
    run = make_trainer(tiny_config("vae", steps=2), tmp_path / "vae", progress=False).fit()
    step_1, metadata = run.read_weights(run.previous_weights)
    assert metadata["step"] == 1
    damage(run.weights, "flip")
    capsys.readouterr()
    model = gz.load(run.path)
    assert "model.safetensors is damaged" in capsys.readouterr().err
    assert all(torch.equal(value, step_1[key]) for key, value in model.state_dict().items())
    damage(run.previous_weights, "truncate")
    with pytest.raises(CheckpointError) as error:
        gz.load(run.path)
    assert_one_sentence(str(error.value))


# ----------------------------------------------------------------------------- divergence

DIVERGING = {"lr": 0.5, "optimizer": "sgd", "steps": 20, "checkpoint_every": 2, "sample_every": 100}  # NaN by step 5


def saved_tensors_are_finite(run: RunFolder) -> bool:
    tensors = {}
    for path in (run.weights, run.previous_weights):
        if path.exists():
            tensors.update({f"{path.name}:{k}": v for k, v in run.read_weights(path)[0].items()})
    for path in (run.state, run.previous_state):
        if path.exists():
            for optimizer in torch.load(path, weights_only=True)["optimizers"].values():
                for index, moments in optimizer["state"].items():
                    tensors.update({f"{path.name}:{index}:{k}": v for k, v in moments.items() if torch.is_tensor(v)})
    return all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())


@pytest.mark.parametrize("log_every", [1, 100])  # 100: caught by the check before a checkpoint is written
def test_divergence_rolls_back_with_a_lower_learning_rate_and_finishes(log_every, tmp_path, capsys):
    trainer = make_trainer(tiny_config("vae", **DIVERGING, log_every=log_every, min_log_records=0), tmp_path / "run",
                           progress=False)
    trainer.fit()
    err = capsys.readouterr().err
    assert trainer.rollbacks == 2 and err.count("rollback") == 2 and "back to the checkpoint of step 2" in err
    assert trainer.optimizers["main"].param_groups[0]["lr"] == 0.5 * 0.5**2
    assert saved_tensors_are_finite(trainer.run)
    assert torch.load(trainer.run.state, weights_only=True)["rollbacks"] == 2
    records = [json.loads(line) for line in trainer.run.log.read_text().splitlines()]
    assert [r["step"] for r in records] == (list(range(1, 21)) if log_every == 1 else [20])
    assert records[-1]["rollbacks"] == 2 and all(v == v for r in records for v in r.values() if isinstance(v, float))


def test_divergence_stops_with_one_sentence_when_asked(tmp_path, capsys):
    with pytest.raises(TrainingDiverged) as error:
        make_trainer(tiny_config("vae", **DIVERGING, on_divergence="stop"), tmp_path / "run", progress=False).fit()
    assert_one_sentence(str(error.value))
    assert "main/total became non-finite by step 5" in str(error.value)
    run = RunFolder(tmp_path / "run")
    assert saved_tensors_are_finite(run) and run.load_checkpoint(note=None).metadata["step"] == 4


def test_a_resume_with_another_learning_rate_uses_it(tmp_path, capsys):
    code, _, err = genzoo(capsys, "train", *TINY_VAE, "--out", tmp_path / "vae")
    assert code == 0, err
    code, _, err = genzoo(capsys, "resume", tmp_path / "vae", "train.lr=0.05", "--steps", "3", "--no-progress")
    assert code == 0, err
    state = torch.load(tmp_path / "vae" / "training_state.pt", weights_only=True)
    assert state["optimizers"]["main"]["param_groups"][0]["lr"] == 0.05 and state["step"] == 3


def test_divergence_stops_after_max_rollbacks(tmp_path):
    config = tiny_config("vae", **DIVERGING, max_rollbacks=1, rollback_lr_factor=0.9)
    with pytest.raises(TrainingDiverged) as error:
        make_trainer(config, tmp_path / "run", progress=False).fit()
    assert "all train.max_rollbacks=1 rollbacks used" in str(error.value)
    assert_one_sentence(str(error.value))
    assert saved_tensors_are_finite(RunFolder(tmp_path / "run"))


# ----------------------------------------------------------------------------- safe loading


class RunsCode:
    """Unpickling this calls Path.touch(marker): what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_a_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path, capsys):
    run = make_trainer(tiny_config("vae", steps=1), tmp_path / "run", progress=False).fit()
    marker = tmp_path / "code-ran"
    torch.save({"step": 1, "payload": RunsCode(marker)}, run.state)
    tensors, metadata = run.read_weights(run.weights)  # the attacker also fixes the checksum: it is no signature
    metadata["state_sha256"] = checkpoint_module.sha256(run.state)
    save_file(tensors, str(run.weights), metadata={k: json.dumps(v) for k, v in metadata.items()})

    with pytest.raises(CheckpointError) as error:
        make_trainer(tiny_config("vae", steps=2), run.path, resume=True, progress=False)
    assert "training_state.pt cannot be loaded safely" in str(error.value)
    assert_one_sentence(str(error.value))
    code, _, err = genzoo(capsys, "resume", run.path, "--steps", "2", "--no-progress")  # (a finished run is not loaded)
    assert code == 2 and "cannot be loaded safely" in err and "Traceback" not in err
    assert not marker.exists()
    torch.load(run.state, weights_only=False)  # the payload is real: unpickled without the guard, it runs
    assert marker.exists()


def test_every_torch_load_in_genzoo_uses_weights_only():
    calls = [(path, line) for path in (REPO / "genzoo").rglob("*.py")
             for line in path.read_text(encoding="utf-8").splitlines() if "torch.load(" in line]
    assert calls and all("weights_only=True" in line for _, line in calls), calls


# ----------------------------------------------------------------------------- failing writes


def write_half_then_fail(write):
    def failing(*args, **kwargs):
        write(*args, **kwargs)
        path = Path(args[1])
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # what a full disk leaves
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return failing


@pytest.mark.parametrize("which", ["weights", "state", "log"])
def test_a_full_disk_leaves_the_checkpoints_as_they_were_and_stops_with_one_sentence(which, tmp_path, capsys, monkeypatch):
    code, _, err = genzoo(capsys, "train", *TINY_VAE, "--out", tmp_path / "vae")
    assert code == 0, err
    before = checkpoint_files(tmp_path / "vae")
    if which == "weights":
        monkeypatch.setattr(checkpoint_module, "save_file", write_half_then_fail(checkpoint_module.save_file))
    elif which == "state":
        monkeypatch.setattr(torch, "save", write_half_then_fail(torch.save))
    else:
        def no_space(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(sys.modules["genzoo.train.log"], "open", no_space, raising=False)
    code, out, err = genzoo(capsys, "resume", tmp_path / "vae", "--steps", "3", "--no-progress")
    assert code == 2 and "No space left on device" in err and "genzoo resume" in err
    assert_one_sentence(err)
    assert checkpoint_files(tmp_path / "vae") == before
    assert not [p.name for p in (tmp_path / "vae").iterdir() if ".tmp-" in p.name]
    monkeypatch.undo()
    code, _, err = genzoo(capsys, "resume", tmp_path / "vae", "--steps", "3", "--no-progress")
    assert code == 0, err


def test_an_unwritable_out_stops_with_one_sentence_and_creates_nothing(tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    code, _, err = genzoo(capsys, "train", *TINY_VAE, "--out", tmp_path / "a-file" / "run")
    assert code == 2 and "cannot write to the run folder" in err
    assert_one_sentence(err)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_stops_with_one_sentence_and_creates_nothing(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = genzoo(capsys, "train", *TINY_VAE, "--out", locked / "run")
    assert code == 2 and "cannot write to the run folder" in err and not list(locked.iterdir())
    assert_one_sentence(err)


def test_errors_of_a_failing_checkpoint_write_are_one_sentence_for_the_library_too(tmp_path, monkeypatch):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.save_checkpoint(*fake_checkpoint(1))
    monkeypatch.setattr(checkpoint_module, "save_file", write_half_then_fail(checkpoint_module.save_file))
    with pytest.raises(GenzooError) as error:
        run.save_checkpoint(*fake_checkpoint(2))
    assert_one_sentence(str(error.value))
    assert "the previous checkpoint is kept" in str(error.value)
    assert run.load_checkpoint(note=None).metadata["step"] == 1
    assert sorted(p.name for p in run.path.iterdir()) == ["model.safetensors", "training_state.pt"]


# ----------------------------------------------------------------------------- mixed precision


def long_bf16_run(preset: str, family: str, device: str, steps: int, folder: Path):
    from conftest import TINY_MODELS

    from genzoo.config import load_config

    items = [f"model.{k}={json.dumps(v)}" for k, v in TINY_MODELS[family].items()] + [
        "data.name=fake", "data.image_size=16", "data.max_images=256", "train.batch_size=16", f"train.steps={steps}",
        "train.log_every=10", "train.sample_every=100000", "train.checkpoint_every=500", "train.mixed_precision=bf16",
        f"train.device={device}", "train.on_divergence=stop"]  # any non-finite loss fails the test
    trainer = make_trainer(load_config(preset, items), folder / preset, progress=False)
    trainer.fit()
    assert trainer.amp_dtype == torch.bfloat16 and trainer.device.type == device
    records = [json.loads(line) for line in trainer.run.log.read_text().splitlines()]
    assert records[-1]["step"] == steps
    assert all(torch.isfinite(torch.tensor(v)) for r in records for k, v in r.items() if "/" in k)
    return trainer


@pytest.mark.slow
def test_wgan_gp_trains_in_bf16_on_the_cpu_without_a_non_finite_loss(tmp_path):
    long_bf16_run("wgan-gp", "gan", "cpu", 1000, tmp_path)


@pytest.mark.slow
def test_ddpm_trains_in_bf16_on_the_cpu_without_a_non_finite_loss(tmp_path):
    trainer = long_bf16_run("ddpm", "ddpm", "cpu", 1000, tmp_path)
    samples = trainer.ema.model.generate(4, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(samples).all()


@pytest.mark.gpu
@pytest.mark.parametrize("preset, family", [("wgan-gp", "gan"), ("ddpm", "ddpm")])
def test_presets_train_in_bf16_on_cuda_without_a_non_finite_loss(preset, family, tmp_path):
    from genzoo.registry import MODELS

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if family not in MODELS.names():
        pytest.skip(f"the {family} family is not registered")
    long_bf16_run(preset, family, "cuda", 5000, tmp_path)

"""The `genzoo` command end to end, in a temporary folder, and its answers to bad input:
one sentence on stderr, exit code 2, no traceback, nothing on disk changed."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from genzoo.cli import main

TINY = ["data.name=fake", "data.image_size=16", "data.max_images=64", "train.steps=2", "train.batch_size=8",
        "train.log_every=1", "--no-progress"]
TINY_VAE = ["vae", *TINY, "model.latent_dim=4", "model.width=4"]


def genzoo(capsys, *args: str) -> tuple[int, str, str]:
    argv, sys.argv = sys.argv, ["genzoo", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def vae_run(tmp_path, capsys) -> Path:
    code, out, err = genzoo(capsys, "train", *TINY_VAE, "--out", tmp_path / "vae")
    assert code == 0, err
    return tmp_path / "vae"


def test_list_shows_families_presets_datasets(capsys):
    code, out, _ = genzoo(capsys, "list")
    assert code == 0
    for name in ("autoencoder", "vae", "gan", "dcgan", "demo", "fashion-mnist", "image-folder", "digits", "fake", "fortunes", "text",
                 "paired-folder", "edges2fashion"):
        assert name in out


def test_train_sample_report_resume(vae_run, tmp_path, capsys):
    assert {"config.json", "model.safetensors", "training_state.pt", "log.jsonl", "report.html"} <= {
        p.name for p in vae_run.iterdir()}
    code, out, err = genzoo(capsys, "sample", vae_run, "-n", "9", "-o", tmp_path / "grid.png")
    assert code == 0, err
    assert Image.open(tmp_path / "grid.png").size[0] > 16 * 3
    code, out, err = genzoo(capsys, "report", vae_run)
    assert code == 0 and "report.html" in out and "<img" in (vae_run / "report.html").read_text()
    code, out, err = genzoo(capsys, "resume", vae_run, "--steps", "3", "--no-progress")
    assert code == 0, err
    assert '"step": 3' in (vae_run / "log.jsonl").read_text().splitlines()[-1]


def test_demo_writes_samples_losses_report_and_replaces_an_earlier_demo(tmp_path, capsys):
    for _ in range(2):
        code, out, err = genzoo(capsys, "demo", "train.eval_real=300", "train.eval_samples=200", "--steps", "2",
                                "--out", tmp_path / "demo", "--no-progress")
        assert code == 0, err
    assert "samples:" in out and "report:" in out
    assert (tmp_path / "demo" / "samples" / "step-000002.png").is_file()
    assert (tmp_path / "demo" / "losses.png").is_file() and (tmp_path / "demo" / "report.html").is_file()


def test_help_of_every_command(capsys):
    for command in ("list", "train", "resume", "sample", "report", "demo"):
        code, out, _ = genzoo(capsys, command, "--help")
        assert code == 0 and "Usage" in out


def test_real_process_exit_codes(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "genzoo", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "train" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "genzoo", "train", "no-such-preset"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().startswith("error:") and len(bad.stderr.strip().splitlines()) == 1


def _write_images(folder: Path, count: int = 3) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("L", (20, 20), color=40 * i).save(folder / f"{i}.png")


def _bad_inputs(tmp: Path) -> dict[str, tuple[list, str]]:
    """name -> (arguments, a phrase the message must contain)."""
    (tmp / "family.yaml").write_text("family: diffusion-gan\n")
    (tmp / "empty").mkdir()
    _write_images(tmp / "corrupt")
    (tmp / "corrupt" / "bad.png").write_bytes(b"not an image at all")
    _write_images(tmp / "truncated")
    data = (tmp / "truncated" / "0.png").read_bytes()
    (tmp / "truncated" / "0.png").write_bytes(data[: len(data) // 2])
    (tmp / "a-file").write_text("x")
    folder = ["data.name=image-folder", "data.image_size=16", "train.steps=1", "--no-progress", "--out", tmp / "r"]
    return {
        "unknown preset": (["train", "dcgna"], "dcgan"),
        "unknown family": (["train", tmp / "family.yaml"], "unknown family"),
        "unknown dataset": (["train", "vae", "data.name=cifar-11"], "unknown dataset"),
        "unknown key": (["train", "vae", "train.batch_sise=4"], "batch_size"),
        "unknown model key": (["train", "gan", "model.dropout=0.1"], "model.dropout"),
        "unknown objective": (["train", "gan", "model.objective=wasserstein-ish"], "non-saturating"),
        "wrong type": (["train", "vae", "train.batch_size=many"], "train.batch_size"),
        "out of range": (["train", "vae", "train.lr=-0.1"], "train.lr"),
        "zero steps": (["train", "vae", "train.steps=0"], "train.steps"),
        "bad choice": (["train", "vae", "train.optimizer=adagrad"], "adam"),
        "bad override": (["train", "vae", "batch_size"], "key=value"),
        "missing folder": (["train", "vae", "data.root=" + str(tmp / "nope"), *folder], "does not exist"),
        "empty folder": (["train", "vae", "data.root=" + str(tmp / "empty"), *folder], "no images"),
        "corrupt image": (["train", "vae", "data.root=" + str(tmp / "corrupt"), *folder], "bad.png"),
        "truncated image": (["train", "vae", "data.root=" + str(tmp / "truncated"), *folder], "0.png"),
        "unwritable output": (["train", *TINY_VAE, "--out", tmp / "a-file" / "run"], "cannot write"),
        "sample from a non-run": (["sample", tmp / "empty"], "not a genzoo run folder"),
        "report of a non-run": (["report", tmp / "nope"], "not a genzoo run folder"),
    }


NAMES = ["unknown preset", "unknown family", "unknown dataset", "unknown key", "unknown model key",
         "unknown objective", "wrong type", "out of range", "zero steps", "bad choice", "bad override",
         "missing folder", "empty folder", "corrupt image", "truncated image", "unwritable output",
         "sample from a non-run", "report of a non-run"]


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_one_sentence_exit_2(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args, phrase = _bad_inputs(tmp_path)[name]
    before = snapshot(tmp_path)
    code, out, err = genzoo(capsys, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert phrase in err, err
    assert snapshot(tmp_path) == before, "a failed command changed files"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "r").exists()


def test_run_folders_are_never_damaged_by_bad_commands(vae_run, tmp_path, capsys):
    before = snapshot(vae_run)
    cases = [
        (["train", "gan", *TINY, "--out", vae_run, "--resume"], "cannot resume as 'gan'"),  # another family
        (["train", *TINY_VAE, "--out", vae_run], "already holds a run"),  # overwrite without --resume
        (["train", *TINY_VAE, "model.latent_dim=6", "--out", vae_run, "--resume"], "model settings differ"),
        (["sample", vae_run, "--ema"], "no EMA weights"),
        (["sample", vae_run, "-o", vae_run / "config.json" / "grid.png"], "is a file"),
        (["demo", "--out", vae_run, "--steps", "1"], "not an earlier demo"),
    ]
    for args, phrase in cases:
        code, out, err = genzoo(capsys, *args)
        assert code == 2 and phrase in err and len(err.strip().splitlines()) == 1, (args, err)
        assert snapshot(vae_run) == before, args


def test_sample_refuses_a_family_that_cannot_generate(tmp_path, capsys):
    ae = ["autoencoder", *TINY, "model.latent_dim=4", "model.width=4"]
    assert genzoo(capsys, "train", *ae, "--out", tmp_path / "ae")[0] == 0
    code, _, err = genzoo(capsys, "sample", tmp_path / "ae", "-o", tmp_path / "x.png")
    assert code == 2 and "cannot generate" in err and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("signum", [pytest.param("SIGINT", marks=pytest.mark.slow), "SIGTERM"])
def test_interrupted_run_saves_a_checkpoint_and_resumes(signum, tmp_path):
    import json
    import signal
    import time

    out = tmp_path / "run"
    command = [sys.executable, "-m", "genzoo", "train", *TINY_VAE, "train.steps=100000", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / "log.jsonl").exists() and time.time() < deadline:  # wait until it is training
        time.sleep(0.2)
    process.send_signal(getattr(signal, signum))
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + getattr(signal, signum), stderr  # saved, then stopped like the signal asks
    assert "checkpoint saved" in stderr and "genzoo resume" in stderr and "Traceback" not in stderr
    import torch

    step = torch.load(out / "training_state.pt", weights_only=True)["step"]
    assert 1 <= step < 100000
    resumed = subprocess.run([sys.executable, "-m", "genzoo", "resume", str(out), "--steps", str(step + 2)],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "log.jsonl").read_text().splitlines()[-1])["step"] == step + 2

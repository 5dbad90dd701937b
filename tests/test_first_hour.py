"""What a new user meets in the first hour (issue 20): each rough edge, through the real command where it is
one. Start-up without torch, paths that work from any folder, resume and "not saved yet" answers, short runs,
eval's protocols and refusals, class names for --labels, data choices said aloud, the small options."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_config
from PIL import Image
from test_cli import TINY_VAE, genzoo, snapshot

from genzoo.api import make_trainer
from genzoo.errors import CheckpointError, DataError
from genzoo.train.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs: a GAN with EMA, a VAE, a conditional GAN on Fashion-MNIST (class names), a DDPM."""
    folder = tmp_path_factory.mktemp("first-hour")
    fmnist = {"name": "fashion-mnist-sample", "image_size": None, "max_images": 64}  # 28 px as it is: no resizing
    configs = {
        "gan": tiny_config("gan", ema_decay=0.9),
        "vae": tiny_config("vae"),
        "cgan": tiny_config("gan", model={"conditional": "cgan"}, data=fmnist),
        "ddpm": tiny_config("ddpm"),
    }
    # checkpoints are all these tests need: no sample grids or reports (the `report` command writes one)
    return {name: Trainer(config, folder / name, progress=False).fit().path for name, config in configs.items()}


def one_line_error(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------- start-up


def test_importing_the_cli_does_not_import_torch():
    code = "import genzoo.cli, sys; assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr


def test_the_cached_catalogue_is_the_live_registries(tmp_path, monkeypatch, capsys):
    from genzoo.catalogue import catalogue, live_catalogue, package_key
    from genzoo.registry import METRICS, MODELS

    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path))
    live = live_catalogue()
    assert catalogue() == live  # computed, then written
    cached = tmp_path / f"catalogue-{package_key()}.json"
    assert json.loads(cached.read_text()) == live
    assert catalogue() == live  # read back
    cached.write_text("{not json")
    assert catalogue() == live  # a damaged cache is recomputed
    assert [row[0] for row in live["families"]] == MODELS.names() and [row[0] for row in live["metrics"]] == METRICS.names()
    code, out, _ = genzoo(capsys, "list")
    assert code == 0 and all(name in out for name in MODELS.names())
    code, out, _ = genzoo(capsys, "eval", "--help")
    flat = " ".join(out.replace("│", " ").split())
    assert code == 0 and all(name in flat for name in METRICS.names()), flat


# ----------------------------------------------------------------------------- paths, resume, not saved yet


def test_paths_are_stored_resolved_and_runs_work_from_any_folder(tmp_path, capsys, monkeypatch):
    (tmp_path / "a" / "photos").mkdir(parents=True)
    for i in range(16):
        Image.new("L", (20, 20), color=12 * i).save(tmp_path / "a" / "photos" / f"{i}.png")
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    code, out, err = genzoo(capsys, "train", *TINY_VAE, "data.name=image-folder", "data.root=photos", "--out", "runs/vae")
    assert code == 0, err
    config = json.loads((tmp_path / "a" / "runs" / "vae" / "config.json").read_text())
    assert config["data"]["root"] == str(tmp_path / "a" / "photos")
    assert config["data"]["image_size"] == 16 and config["data"]["channels"] == 1  # no nulls where the data decided
    monkeypatch.chdir(tmp_path / "b")  # another folder: the run finds its data
    run = "../a/runs/vae"
    assert genzoo(capsys, "resume", run, "--steps", "3", "--no-progress")[0] == 0
    assert genzoo(capsys, "sample", run, "-n", "4", "-o", "grid.png")[0] == 0 and Path("grid.png").is_file()
    assert genzoo(capsys, "latent", "reconstruct", run, "-n", "2", "-o", "recon.png")[0] == 0
    code, out, err = genzoo(capsys, "eval", run, "--metrics", "recon", "-n", "4")
    assert code == 0 and "mse" in out, err
    monkeypatch.setenv("HOME", str(tmp_path / "a"))
    from genzoo.config import load_config

    assert load_config("vae", ["data.root=~/photos"]).data.root == str(tmp_path / "a" / "photos")


def test_every_file_setting_of_every_config_is_resolved():
    """Every config key that names a file or folder has the type that stores it resolved."""
    from typing import get_args

    from genzoo.config import DataConfig, PathSetting, TrainConfig, resolve_path
    from genzoo.registry import MODELS, PROCEDURES

    path_like = ("root", "run", "images", "path", "file", "folder", "dir", "weights")
    models = [DataConfig, TrainConfig] + [family.Config for _, family in MODELS.items()] + [
        procedure.Config for _, procedure in PROCEDURES.items()]
    checked = 0
    for model in models:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            is_text = annotation is str or str in get_args(annotation) or PathSetting in get_args(annotation)
            if is_text and any(name == word or name.endswith("_" + word) for word in path_like):
                direct = any(getattr(m, "func", None) is resolve_path for m in field.metadata)  # pydantic unpacks Annotated
                assert direct or PathSetting in get_args(annotation), f"{model.__name__}.{name}"
                checked += 1
    assert checked >= 3  # data.root, invert's run and images


def test_resume_to_a_step_already_reached_and_of_a_finished_run(tmp_path, capsys):
    run = tmp_path / "vae"
    assert genzoo(capsys, "train", *TINY_VAE, "train.steps=3", "--out", run)[0] == 0
    before = snapshot(run)
    code, out, err = genzoo(capsys, "resume", run, "--steps", "2")
    assert "already at step 3" in one_line_error(code, err)
    code, out, err = genzoo(capsys, "resume", run, "--steps", "3")
    one_line_error(code, err)
    code, out, err = genzoo(capsys, "resume", run)  # finished: said so, exit 0, nothing touched
    assert code == 0 and "is finished" in out and "--steps" in out and not err, (out, err)
    assert snapshot(run) == before
    code, out, err = genzoo(capsys, "resume", run, "--steps", "4", "--no-progress")
    assert code == 0 and "from step 3 of 4" in err, err


def test_a_run_that_has_not_saved_yet_is_described_as_such(runs, tmp_path, capsys):
    import genzoo as api

    young = tmp_path / "young"
    young.mkdir()
    (young / "config.json").write_text((runs["gan"] / "config.json").read_text())  # as training starts
    for command in (["sample", young, "-o", tmp_path / "s.png"], ["eval", young, "-n", "8"],
                    ["latent", "interpolate", young, "-o", tmp_path / "i.png"]):
        code, out, err = genzoo(capsys, *command)
        assert "has no checkpoint yet: the first is written at step 1" in one_line_error(code, err), command
    with pytest.raises(CheckpointError, match="no checkpoint yet"):
        api.load(young)
    code, out, err = genzoo(capsys, "report", young)
    assert code == 0 and "no checkpoint yet" in err and "No checkpoint yet" in (young / "report.html").read_text()


# ----------------------------------------------------------------------------- short runs


def test_short_runs_log_often_enough_and_draw_their_points():
    from genzoo.config import TrainConfig
    from genzoo.report.plots import loss_figure
    from genzoo.train.log import log_interval

    assert [log_interval(TrainConfig(steps=s, log_every=50)) for s in (10, 100, 1000, 5000)] == [1, 5, 50, 50]
    assert log_interval(TrainConfig(steps=10, log_every=50, min_log_records=0)) == 50  # exactly as asked
    few = loss_figure([{"step": s, "main/total": 1.0 / s} for s in range(5, 101, 5)])
    many = loss_figure([{"step": s, "main/total": 1.0 / s} for s in range(1, 1001)])
    assert few.axes[0].lines[0].get_marker() == "o" and many.axes[0].lines[0].get_marker() in ("None", None, "")


def test_a_short_run_logs_twenty_records(tmp_path):
    run = Trainer(tiny_config("vae", steps=20, log_every=50), tmp_path / "r", progress=False).fit()
    assert [json.loads(line)["step"] for line in run.log.read_text().splitlines()] == list(range(1, 21))


def test_latent_arithmetic_says_to_draw_more_samples(runs, tmp_path, capsys):
    code, out, err = genzoo(capsys, "latent", "arithmetic", runs["gan"], "--a", "Sneaker", "--b", "Sandal", "--c", "Bag",
                            "--samples", "1", "-o", tmp_path / "a.png")
    assert "--samples 2000" in one_line_error(code, err) and not (tmp_path / "a.png").exists()


# ----------------------------------------------------------------------------- eval


def test_eval_prints_each_scores_own_protocol_and_skips_what_it_cannot_compute(runs, tmp_path, capsys):
    code, out, err = genzoo(capsys, "eval", runs["vae"], "--metrics", "elbo,fid,kid", "-n", "40", "--num-real", "64")
    assert code == 0, err
    assert "protocol of elbo:" in out and "protocol of bits/dim:" in out and "extractor None" not in out
    kid = next(line for line in out.splitlines() if line.startswith("protocol of kid-fmnist"))
    assert "extractor fmnist (sha256" in kid and "40 fake" in kid and "reference fake (" in kid  # fake data has no splits: none is named
    flat = " ".join(err.split())
    assert "skipped fid" in flat and "--num-samples is 40" in flat and "give --num-samples 129 or more" in flat
    rows = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert rows[:2] == ["elbo", "bits/dim"] and "fid-fmnist" not in rows
    code, out, err = genzoo(capsys, "eval", runs["gan"], "--metrics", "pr", "-n", "16", "--num-real", "32")
    assert code == 0 and "EMA on, decay 0.9, warm-up" in out, err  # how the EMA weights were averaged
    code, out, err = genzoo(capsys, "report", runs["gan"])
    page = (runs["gan"] / "report.html").read_text()
    assert "<th>extractor</th>" in page and "<th>EMA</th>" in page and "on, decay 0.9, warm-up" in page
    assert '{"extractor"' not in page and "&quot;extractor&quot;" not in page  # a table, not a JSON blob


def test_fid_refusal_on_folders_says_how_many_images_and_computes_the_rest(tmp_path, capsys):
    for name, count in (("real", 40), ("fake", 30)):
        (tmp_path / name).mkdir()
        for i in range(count):
            Image.new("L", (28, 28), color=(7 * i) % 256).save(tmp_path / name / f"{i}.png")
    code, out, err = genzoo(capsys, "eval", "--real", tmp_path / "real", "--fake", tmp_path / "fake", "--metrics", "fid,pr")
    assert code == 0 and "precision-fmnist" in out, err
    flat = " ".join(err.split())
    assert "skipped fid" in flat and "gives 30" in flat and "gives 40" in flat and "to reach 129" in flat
    code, out, err = genzoo(capsys, "eval", "--real", tmp_path / "real", "--fake", tmp_path / "fake", "--metrics", "fid")
    assert "to reach 129" in one_line_error(code, err)  # nothing else asked: refused


def test_eval_takes_the_diffusion_sampler_options(runs, tmp_path, capsys):
    code, out, err = genzoo(capsys, "eval", runs["ddpm"], "--metrics", "kid", "-n", "8", "--num-real", "16",
                            "--sampler", "ddim", "--steps", "3", "--eta", "0.5", "--json", tmp_path / "s.json")
    assert code == 0, err
    sampler = json.loads((tmp_path / "s.json").read_text())[0]["protocol"]["sampler"]
    assert (sampler["sampler"], sampler["steps"], sampler["eta"]) == ("ddim", 3, 0.5)
    assert "sampler ddim, steps 3" in out
    code, out, err = genzoo(capsys, "eval", runs["ddpm"], "--metrics", "kid", "-n", "8", "--num-real", "16",
                            "--sampler", "ddpm", "--json", tmp_path / "t.json")
    assert code == 0 and json.loads((tmp_path / "t.json").read_text())[0]["protocol"]["sampler"]["steps"] == 10, err
    code, out, err = genzoo(capsys, "eval", runs["gan"], "--metrics", "kid", "-n", "8", "--steps", "5")
    assert "has no steps" in one_line_error(code, err)


# ----------------------------------------------------------------------------- labels, data, options


def test_labels_by_name_everywhere_and_errors_that_say_what_is_wrong(runs, tmp_path, capsys):
    from genzoo.loading import load
    from genzoo.sampling import parse_labels

    model = load(runs["cgan"])
    assert parse_labels("sneaker,Ankle boot,t-shirt,3", 4, model) == [7, 9, 0, 3]
    assert parse_labels("Bag", 3, model) == [8, 8, 8]
    code, out, err = genzoo(capsys, "sample", runs["cgan"], "--labels", "Sneaker,bag", "-n", "2", "-o", tmp_path / "s.png")
    assert code == 0 and (tmp_path / "s.png").is_file(), err
    cases = [(["--labels", "1,2,3", "-n", "4"], "3 labels for 4 samples"),
             (["--labels", "Unicorn"], "Ankle boot"),
             (["--labels", "12"], "class indices 0 to 9"),
             (["--labels", "3,,4", "-n", "3"], "empty entry")]
    for args, phrase in cases:
        code, out, err = genzoo(capsys, "sample", runs["cgan"], *args, "-o", tmp_path / "bad.png")
        assert phrase in one_line_error(code, err), args
    code, out, err = genzoo(capsys, "sample", runs["gan"], "--labels", "3", "-o", tmp_path / "bad.png")
    assert "not class-conditional" in one_line_error(code, err) and not (tmp_path / "bad.png").exists()


def test_an_existing_but_empty_data_root_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    from genzoo.config import DataConfig
    from genzoo.data import build_dataset
    from genzoo.data.fashion_mnist import EMBEDDED

    monkeypatch.setenv("GENZOO_DATA", str(EMBEDDED))  # another copy that holds the test split
    (tmp_path / "empty").mkdir()
    assert len(build_dataset(DataConfig(split="test"))) == 10_000  # without data.root: found
    with pytest.raises(DataError, match="holds no Fashion-MNIST test files"):
        build_dataset(DataConfig(split="test", root=str(tmp_path / "empty")))


def test_the_image_size_and_channels_picked_for_a_folder_are_said_and_saved(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    for i in range(16):
        Image.new("RGB", (40, 30), color=(10 * i, 50, 200)).save(tmp_path / "photos" / f"{i}.png")
    code, out, err = genzoo(capsys, "train", "vae", "model.latent_dim=4", "model.width=4", "data.name=image-folder",
                            f"data.root={tmp_path / 'photos'}", "train.steps=1", "train.batch_size=8", "--no-progress",
                            "--out", tmp_path / "run")
    assert code == 0, err
    flat = " ".join(err.split())
    assert "data.image_size=64 (the default)" in flat and "data.channels=3" in flat
    data = json.loads((tmp_path / "run" / "config.json").read_text())["data"]
    assert (data["image_size"], data["channels"]) == (64, 3)


def test_genzoo_config_prints_the_full_resolved_config(capsys):
    from genzoo.config import build_config, load_config

    code, out, err = genzoo(capsys, "config", "dcgan", "train.batch_size=32")
    assert code == 0, err
    assert build_config(yaml.safe_load(out)) == load_config("dcgan", ["train.batch_size=32"])
    code, out, err = genzoo(capsys, "config", "vae", "--json")
    assert code == 0 and json.loads(out)["train"]["ema_warmup"] is True and json.loads(out)["family"] == "vae"
    assert "unknown preset" in one_line_error(*genzoo(capsys, "config", "dcgna")[::2])


def test_sample_creates_its_output_folder_and_a_run_folder_prints_as_its_path(runs, tmp_path, capsys):
    from genzoo.train.checkpoint import RunFolder

    code, out, err = genzoo(capsys, "sample", runs["gan"], "-n", "4", "-o", tmp_path / "new" / "deeper" / "grid.png")
    assert code == 0 and (tmp_path / "new" / "deeper" / "grid.png").is_file(), err
    folder = RunFolder(runs["gan"])
    assert str(folder) == str(runs["gan"]) and os.fspath(folder) == str(runs["gan"]) and Path(folder) == runs["gan"]
    assert f"{folder}" == str(runs["gan"])


def test_grids_are_square_ish_and_laid_out_as_torchvision_does():
    from torchvision.utils import make_grid as torchvision_grid

    from genzoo.report.grids import grid_columns, make_grid

    assert [grid_columns(n) for n in (1, 2, 9, 12, 16, 25, 64)] == [1, 2, 3, 4, 4, 5, 8]
    for shape in ((9, 1, 5, 7), (6, 3, 4, 4)):
        images = torch.rand(shape) * 2 - 1
        expected = torchvision_grid(images, nrow=3, normalize=True, value_range=(-1, 1), padding=1)
        assert torch.allclose(make_grid(images, 3), expected, atol=1e-6)


def test_only_the_main_process_prints_notes(monkeypatch, capsys):
    from genzoo.io import is_main_process, print_note

    for variable, value, main in (("RANK", "1", False), ("RANK", "0", True), ("PMI_RANK", "3", False)):
        monkeypatch.setenv(variable, value)
        assert is_main_process() is main
        print_note("hello")
        assert ("hello" in capsys.readouterr().err) is main
        monkeypatch.delenv(variable)
    assert is_main_process()


def test_the_progress_bar_keeps_bar_count_and_eta_on_80_columns():
    from rich.console import Console

    from genzoo.train.log import progress_bar, progress_losses

    progress = progress_bar(Console(stderr=True), enabled=True)
    task = progress.add_task("gan", total=5000, completed=1234, speed="", losses="")
    record = {"step": 1234, "discriminator/total": 1.23, "discriminator/loss_d_real": 0.612,
              "discriminator/loss_d_fake": 0.611, "discriminator/d_real": 0.5, "discriminator/d_fake": 0.49,
              "generator/total": 0.77, "schedule/alpha": 0.5}
    progress.update(task, speed="1,234 img/s", losses=progress_losses(record))
    console = Console(width=80, force_terminal=True, record=True, file=io.StringIO())
    console.print(progress.get_renderable())
    lines = console.export_text().splitlines()
    assert "━" in lines[0] and "1234/5000" in lines[0] and "eta" in lines[0] and "img/s" in lines[0]
    assert all(len(line) <= 80 for line in lines)
    rest = " ".join(lines[1:])
    assert "discriminator: total=1.23" in rest and "loss_d_real=0.612" in rest and "generator: total=0.77" in rest
    assert "schedule" not in rest


# ----------------------------------------------------------------------------- the DCGAN discriminator's last layer


def test_the_dcgan_score_head_is_the_papers_last_convolution_with_its_initialisation():
    from genzoo.data.info import DataInfo
    from genzoo.models.gan import GAN, GANConfig

    torch.manual_seed(0)
    gan = GAN(GANConfig(discriminator_width=16), DataInfo(channels=1, image_size=28))
    head, body = gan.discriminator.score, gan.discriminator.body
    features = body.net(torch.randn(4, 1, 28, 28))  # (4, F, b, b) = (4, 32, 7, 7): the map before the last layer
    assert tuple(features.shape[1:]) == (32, 7, 7)
    conv = torch.nn.Conv2d(32, 1, 7, 1, 0)  # the paper's last layer at 28 px: b x b to one score
    conv.weight.data, conv.bias.data = head.weight.view(1, 32, 7, 7), head.bias.data
    torch.testing.assert_close(head(features.flatten(1)), conv(features).flatten(1), rtol=1e-5, atol=1e-6)
    assert abs(head.weight.std().item() - 0.02) < 0.002 and head.bias.abs().max() == 0  # N(0, 0.02), as every layer
    layout = {key: tuple(value.shape) for key, value in gan.state_dict().items() if key.startswith("discriminator.score")}
    assert layout == {"discriminator.score.weight": (1, 32 * 7 * 7), "discriminator.score.bias": (1,)}  # old runs load


def test_a_gan_checkpoint_from_before_the_initialisation_change_loads(runs, tmp_path):
    """A run saved with the earlier default initialisation of the head (same shapes) loads and samples."""
    import shutil

    import genzoo as api
    from genzoo.train.checkpoint import RunFolder

    old = tmp_path / "old"
    shutil.copytree(runs["gan"], old)
    folder = RunFolder(old)
    tensors, metadata = folder.read_weights(folder.weights)
    linear = torch.nn.Linear(tensors["discriminator.score.weight"].shape[1], 1)  # torch's default init, as before
    tensors["discriminator.score.weight"], tensors["discriminator.score.bias"] = linear.weight.data, linear.bias.data
    state = torch.load(folder.state, weights_only=True)
    folder.save_checkpoint(tensors, {k: v for k, v in metadata.items() if not k.endswith("sha256")}, state)
    model = api.load(old)
    assert torch.equal(model.discriminator.score.weight, linear.weight.data)
    assert model.generate(2).shape == (2, 1, 16, 16)


def test_sample_into_a_folder_writes_one_png_per_sample_for_eval(runs, tmp_path, capsys):
    code, out, err = genzoo(capsys, "sample", runs["cgan"], "-n", "5", "-o", f"{tmp_path / 'samples'}/")
    assert code == 0, err
    files = sorted((tmp_path / "samples").iterdir())
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(5)]
    assert Image.open(files[0]).size == (28, 28) and Image.open(files[0]).mode == "L"


# ----------------------------------------------------------------------------- EMA warm-up


def test_ema_decay_warms_up_and_the_average_follows_the_known_recursion():
    import math

    from genzoo.train.ema import EMA, ema_decay

    assert ema_decay(0.999, 1, True) == 2 / 11 and ema_decay(0.999, 100, True) == 101 / 110
    assert ema_decay(0.999, 10_000, True) == 0.999 and ema_decay(0.999, 1, False) == 0.999
    assert math.prod(ema_decay(0.999, t, True) for t in range(1, 101)) < 1e-3  # the initial weights are forgotten
    model = torch.nn.Module()
    model.generator = torch.nn.Linear(1, 1, bias=False)
    model.generator.weight.data.fill_(0.0)
    averaged = EMA(model, 0.9, ("generator",), warmup=True)
    expected = 0.0
    for step, value in enumerate([1.0, 2.0, -1.0, 4.0, 0.5], start=1):
        model.generator.weight.data.fill_(value)
        averaged.update(step)
        decay = min(0.9, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * value  # theta_ema <- d theta_ema + (1 - d) theta
        assert averaged.model.generator.weight.item() == pytest.approx(expected, rel=1e-6)


def test_scores_during_training_record_how_the_ema_was_averaged(tmp_path):
    config = tiny_config("gan", ema_decay=0.9, steps=2, eval_every=2, eval_metrics=["kid"], eval_samples=16, eval_real=32)
    run = make_trainer(config, tmp_path / "run", progress=False).fit()
    protocol = json.loads((run.path / "metrics.jsonl").read_text().splitlines()[-1])["scores"][0]["protocol"]
    assert (protocol["ema"], protocol["ema_decay"], protocol["ema_warmup"]) == (True, 0.9, True)

"""Evaluation end to end: protocol-tagged scores of runs and folders, caching, refusals."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from PIL import Image
from test_cli import genzoo as cli

import genzoo
from genzoo.errors import GenzooError
from genzoo.metrics.context import EvalContext
from genzoo.metrics.features import load_features
from genzoo.metrics.fmnist_net import WEIGHTS
from genzoo.io import sha256
from genzoo.api import make_trainer

PROTOCOL_KEYS = {"metric", "extractor", "extractor_sha256", "n_real", "n_fake", "reference", "resize", "ema",
                 "sampler", "seed"}


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae"
    return make_trainer(tiny_config("vae", ema_decay=0.5), out, progress=False).fit().path


def test_scores_of_a_run_carry_their_protocol(vae_run):
    scores = genzoo.evaluate(vae_run, ["fid", "kid", "is", "pr", "dc", "variety"], num_samples=200, num_real=300,
                             batch_size=128)
    names = [s.name for s in scores]
    assert names == ["fid-fmnist", "kid-fmnist", "is-fmnist", "precision-fmnist", "recall-fmnist",
                     "density-fmnist", "coverage-fmnist", "classes-fmnist", "class-kl-fmnist"]
    for score in scores:
        assert PROTOCOL_KEYS <= set(score.protocol), score.name
        assert score.protocol["extractor_sha256"] == sha256(WEIGHTS)
        assert score.protocol["n_fake"] == 200 and score.protocol["n_real"] == 300
        assert score.protocol["reference"]["dataset"] == "fake"
        assert score.protocol["reference"]["split"] is None  # the fake dataset has no splits
        assert score.protocol["ema"] is True and torch.isfinite(torch.tensor(score.value))
    values = {s.name: s.value for s in scores}
    assert values["fid-fmnist"] > 0 and 0 <= values["precision-fmnist"] <= 1 and 1 <= values["is-fmnist"] <= 10
    record = json.loads((vae_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 2 and [s["name"] for s in record["scores"]] == names


def test_same_seed_same_scores_and_reference_is_cached(vae_run, tmp_path, monkeypatch):
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path))
    first = genzoo.evaluate(vae_run, ["fid", "kid"], num_samples=200, num_real=300)
    cached = list(tmp_path.rglob("*.safetensors"))
    assert len(cached) == 1
    second = genzoo.evaluate(vae_run, ["fid", "kid"], num_samples=200, num_real=300)
    assert [s.value for s in first] == [s.value for s in second]
    genzoo.evaluate(vae_run, ["fid"], num_samples=200, num_real=250)  # another reference: another cache entry
    assert len(list(tmp_path.rglob("*.safetensors"))) == 2


def test_fid_refuses_fewer_samples_than_feature_dimensions(vae_run):
    with pytest.raises(GenzooError, match="at least"):
        genzoo.evaluate(vae_run, ["fid"], num_samples=50, num_real=300)


def test_reconstruction_metrics_and_refusals(tmp_path):
    ae = make_trainer(tiny_config("autoencoder"), tmp_path / "ae", progress=False).fit().path
    mse, psnr = genzoo.evaluate(ae, ["recon"], num_samples=64)
    assert (mse.name, psnr.name) == ("mse", "psnr") and 0 < mse.value < 1
    assert psnr.value == pytest.approx(10 * math.log10(1 / mse.value), rel=1e-12)
    with pytest.raises(GenzooError, match="does not generate"):
        genzoo.evaluate(ae, ["fid"], num_samples=200)
    gan = make_trainer(tiny_config("gan"), tmp_path / "gan", progress=False).fit().path
    with pytest.raises(GenzooError, match="reconstructs"):
        genzoo.evaluate(gan, ["recon"], num_samples=200, num_real=200)


def test_periodic_evaluation_during_training(tmp_path):
    config = tiny_config("gan", data={"max_images": 200}, steps=4, eval_every=2, eval_metrics=["fid", "pr"],
                         eval_samples=150)
    run = make_trainer(config, tmp_path / "run", progress=False).fit()
    records = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert [s["name"] for s in records[0]["scores"]] == ["fid-fmnist", "precision-fmnist", "recall-fmnist"]
    assert "fid-fmnist" in run.report.read_text()


def test_unknown_metric_in_training_fails_before_training(tmp_path):
    with pytest.raises(GenzooError, match="unknown metric"):
        make_trainer(tiny_config("gan", eval_every=1, eval_metrics=["fidd"]), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def _folder(path, images):
    path.mkdir(parents=True)
    for i, image in enumerate(images):
        image.save(path / f"{i}.png")
    return path


def _fashion_images(n, offset=0):
    data = genzoo.data.build_dataset(genzoo.config.DataConfig(name="fashion-mnist-sample"))
    return [Image.fromarray(data.images[offset + i, 0].numpy()) for i in range(n)]


def test_folders_against_each_other(tmp_path):
    real = _folder(tmp_path / "real", _fashion_images(200))
    shifted = _folder(tmp_path / "fake", _fashion_images(200, offset=200))
    generator = torch.Generator().manual_seed(0)
    noise = _folder(tmp_path / "noise", [Image.fromarray(torch.randint(0, 256, (28, 28), generator=generator,
                                                                       dtype=torch.uint8).numpy()) for _ in range(200)])
    same = {s.name: s.value for s in genzoo.evaluate_folders(real, real, ["fid", "pr"])}
    other = {s.name: s.value for s in genzoo.evaluate_folders(real, shifted, ["fid", "pr"])}
    random = {s.name: s.value for s in genzoo.evaluate_folders(real, noise, ["fid", "pr"])}
    assert abs(same["fid-fmnist"]) < 1e-6 and same["precision-fmnist"] == 1.0
    assert 0 < other["fid-fmnist"] < random["fid-fmnist"] / 10
    assert other["precision-fmnist"] > 0.5 > random["precision-fmnist"]
    with pytest.raises(GenzooError, match="fewer than"):
        genzoo.evaluate_folders(real, shifted, ["fid"], num_samples=500)


def test_folders_of_mixed_sizes_modes_and_alpha(tmp_path):
    images = _fashion_images(150)
    mixed = [im.resize((40, 40)) if i % 3 == 0 else im.convert("RGB") if i % 3 == 1 else im.convert("RGBA")
             for i, im in enumerate(images)]
    real = _folder(tmp_path / "real", images)
    fake = _folder(tmp_path / "mixed", mixed)
    scores = {s.name: s for s in genzoo.evaluate_folders(real, fake, ["fid", "dc"])}
    assert scores["fid-fmnist"].value < 5 and scores["fid-fmnist"].protocol["folder_resize"] == "crop"
    assert "centre crop" in scores["fid-fmnist"].protocol["folder_pipeline"]


def test_eval_cli(vae_run, tmp_path, capsys):
    code, out, err = cli(capsys, "eval", vae_run, "--metrics", "fid,pr", "-n", "200", "--num-real", "300",
                            "--json", tmp_path / "scores.json")
    assert code == 0, err
    assert "fid-fmnist" in out and "protocol" in out and "sha256" in out
    saved = json.loads((tmp_path / "scores.json").read_text())
    assert [s["name"] for s in saved] == ["fid-fmnist", "precision-fmnist", "recall-fmnist"]


@pytest.mark.parametrize("args, phrase", [
    (["--metrics", "fidd"], "unknown metric"),
    (["--extractor", "vgg"], "unknown feature network"),
    (["--metrics", "fid", "-n", "20"], "at least"),
    (["--extractor", "inception", "--inception-weights", "WEIGHTS_FILE"], "weights"),
])
def test_eval_cli_bad_input(vae_run, tmp_path, capsys, args, phrase):
    (tmp_path / "weights.pth").write_text("not a state dict")
    args = [str(tmp_path / "weights.pth") if a == "WEIGHTS_FILE" else a for a in args]
    before = (vae_run / "metrics.jsonl").read_text() if (vae_run / "metrics.jsonl").exists() else None
    code, out, err = cli(capsys, "eval", vae_run, *args)
    assert code == 2 and phrase in err.lower() and len(err.strip().splitlines()) == 1, err
    after = (vae_run / "metrics.jsonl").read_text() if (vae_run / "metrics.jsonl").exists() else None
    assert before == after


def test_eval_cli_folder_arguments(tmp_path, capsys):
    assert "--real and --fake go together" in cli(capsys, "eval", "--real", tmp_path)[2]
    assert cli(capsys, "eval")[0] == 2


def test_elbo_metric_of_a_vae_and_its_closed_form_parts(vae_run):
    score, bits = genzoo.evaluate(vae_run, ["elbo"], num_samples=64)
    model = genzoo.load(vae_run)
    data = genzoo.data.build_dataset(genzoo.config.DataConfig(name="fake", image_size=16, max_images=64))
    x = data.batch(torch.arange(64))["image"]
    torch.manual_seed(0)
    nll = model.nll({"image": x})
    # the bound is the training loss (summed squared error + KL) plus the Gaussian constant D/2 log(pi)
    assert nll.shape == (64,) and (nll > 0.5 * 256 * math.log(math.pi)).all()
    assert score.name == "elbo" and score.value > 0 and score.protocol["units"].startswith("nats")
    # bits per 8-bit dimension of the dequantised data: (NLL / D + log 128) / log 2
    assert bits.name == "bits/dim" and bits.value == pytest.approx((score.value / 256 + math.log(128)) / math.log(2))
    with pytest.raises(GenzooError, match="needs a model with a likelihood"):
        genzoo.evaluate(make_trainer(tiny_config("gan"), vae_run.parent / "g", progress=False).fit().path, ["elbo"], num_samples=64)


# ----------------------------------------------------------------------------------------------------
# Numbers that can be trusted: the feature network's input, KID's spread, the split, the cache
# ----------------------------------------------------------------------------------------------------


def _one_sentence(message: str) -> bool:
    return "\n" not in message and message.endswith(".") and ". " not in message[:-1]


def test_feature_network_refuses_images_it_does_not_expect():
    network = load_features("fmnist")
    data = genzoo.data.build_dataset(genzoo.config.DataConfig(name="fashion-mnist-sample"))
    images = data.batch(torch.arange(8))["image"]  # (8, 1, 28, 28) in [-1, 1]
    assert network(images)["features"].shape == (8, 128)
    for bad in (data.images[:8], (images + 1) * 127.5, torch.full((8, 1, 28, 28), float("nan"))):
        with pytest.raises(GenzooError) as error:  # uint8, [0, 255] floats, NaN: garbage features if accepted
            network(bad)
        assert _one_sentence(str(error.value)) and "[-1, 1]" in str(error.value), error.value


def test_kid_of_whole_sets_reports_no_spread(vae_run):
    (score,) = genzoo.evaluate(vae_run, ["kid"], num_samples=200, num_real=200)
    assert score.std is None and score.protocol["subsets"] == 1 and "whole set" in score.protocol["note"]


def test_the_protocol_records_the_split_the_data_really_has(vae_run, tmp_path, capsys, monkeypatch):
    model = genzoo.load(vae_run)
    kwargs = {"num_samples": 150, "num_real": 150}
    (score,) = genzoo.evaluate(model, ["fid"], data="fashion-mnist-sample", split="test", **kwargs)
    assert score.protocol["reference"]["split"] == "test"
    (default,) = genzoo.evaluate(model, ["fid"], data="fashion-mnist-sample", **kwargs)  # the config says train
    assert default.protocol["reference"]["split"] == "test" and default.value == score.value
    with pytest.raises(GenzooError) as error:  # only the test split exists: no score under another name
        genzoo.evaluate(model, ["fid"], data="fashion-mnist-sample", split="train", **kwargs)
    assert _one_sentence(str(error.value)) and "test split" in str(error.value)
    # full Fashion-MNIST asked for: where it is missing, the embedded test split stands in, and the protocol says so
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("GENZOO_DATA", str(empty))  # (an explicit data.root without the files is an error, not a fallback)
    config = genzoo.config.DataConfig(name="fashion-mnist")
    fallback = bool(genzoo.data.build_dataset(config).notes)
    (score,) = genzoo.evaluate(model, ["fid"], data=config, **kwargs)
    assert score.protocol["reference"]["split"] == ("test" if fallback else "train")
    assert bool(score.protocol["reference"].get("notes")) == fallback
    code, _, err = cli(capsys, "eval", vae_run, "--metrics", "fid", "-n", "150", "--split", "test")
    assert code == 2 and "has no splits" in err and len(err.strip().splitlines()) == 1, err  # `fake` has none


def _fid_of_folder(model, folder):
    config = genzoo.config.DataConfig(name="image-folder", root=str(folder), image_size=28, channels=1)
    (score,) = genzoo.evaluate(model, ["fid"], data=config, num_samples=150, num_real=150)
    return score


def _replace_images(folder, offset):
    for i, image in enumerate(_fashion_images(150, offset=offset)):
        image.save(folder / f"{i}.png")


def test_the_reference_cache_follows_the_images(vae_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = genzoo.load(vae_run)
    folder = _folder(tmp_path / "real", _fashion_images(150))
    first = _fid_of_folder(model, "real")  # a relative folder: the protocol names it absolutely
    assert str(folder.resolve()) in first.protocol["reference"]["source"]
    _replace_images(folder, offset=500)  # the same names and count, other images
    second = _fid_of_folder(model, "real")
    assert second.value != first.value
    assert len(list(Path(os.environ["GENZOO_CACHE"]).rglob("*.safetensors"))) == 2  # one entry per content
    config = genzoo.config.DataConfig(name="image-folder", root=str(folder), image_size=28, channels=1)
    (fresh,) = genzoo.evaluate(model, ["fid"], data=config, num_samples=150, num_real=150, use_cache=False)
    assert second.value == fresh.value


def _flip_a_bit_of_the_mean(path):
    raw = bytearray(path.read_bytes())
    header_length = int.from_bytes(raw[:8], "little")
    start = json.loads(raw[8 : 8 + header_length])["moments.mean"]["data_offsets"][0]
    raw[8 + header_length + start + 6] ^= 0x10  # a bit of the first mean's exponent side: a real change
    path.write_bytes(bytes(raw))


def _shift_the_mean_keeping_the_checksum(path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from genzoo.io import tensors_sha256

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    tensors["moments.mean"] = tensors["moments.mean"] + 0.5  # statistics that are not those of the features
    save_file(tensors, str(path), metadata={**metadata, "sha256": tensors_sha256(tensors)})


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_damaged_cache_entry_is_recomputed_with_a_note(capsys):
    network = load_features("fmnist")
    data = genzoo.data.build_dataset(genzoo.config.DataConfig(name="fashion-mnist-sample", max_images=150))

    def reference():
        return EvalContext(network, data, {"dataset": "fashion-mnist-sample"}, 150, None, 0).real

    first = reference()
    (cached,) = list(Path(os.environ["GENZOO_CACHE"]).rglob("*.safetensors"))
    for damage, phrase in ((_flip_a_bit_of_the_mean, "checksum"), (_shift_the_mean_keeping_the_checksum, "disagree"),
                           (_truncate, "cannot be read")):
        damage(cached)
        capsys.readouterr()
        again = reference()
        err = capsys.readouterr().err
        assert torch.equal(again.moments.mean, first.moments.mean) and torch.equal(again.features, first.features)
        assert "note:" in err and phrase in err and "recomputing" in err, err
    assert torch.equal(reference().moments.scatter, first.moments.scatter)  # the last recomputation was written whole
    assert "note:" not in capsys.readouterr().err

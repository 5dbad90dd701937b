"""Datasets, conform, batches and the deterministic BatchStream, on real files at tiny sizes."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genzoo  # noqa: F401  (fills the registries)
from genzoo.config import DataConfig
from genzoo.data import BatchStream, ImageData, build_dataset
from genzoo.data import fashion_mnist as fmnist_module
from genzoo.data.base import conform
from genzoo.errors import ConfigError, DataError

SYSTEM_FMNIST = Path("/usr/share/datasets/fashion-mnist")
needs_system_fmnist = pytest.mark.skipif(
    not SYSTEM_FMNIST.is_dir(), reason=f"full Fashion-MNIST not installed at {SYSTEM_FMNIST} (Debian dataset-fashion-mnist)"
)
# The first ten labels of the official Fashion-MNIST test split (t10k-labels-idx1-ubyte).
T10K_FIRST_LABELS = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


@pytest.fixture(autouse=True)
def _no_genzoo_data(monkeypatch):
    monkeypatch.delenv("GENZOO_DATA", raising=False)


def build(**fields) -> ImageData:
    return build_dataset(DataConfig(**fields))


# ----------------------------------------------------------------------------- Fashion-MNIST helpers

def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 IDX file (gzipped when the name ends in .gz)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if path.suffix == ".gz" else open)(path, "wb").write(header + array.astype(np.uint8).tobytes())


def write_fmnist(folder: Path, n_train: int, n_test: int, fill: int = 0, suffix: str = ".gz") -> dict[str, np.ndarray]:
    """A small Fashion-MNIST lookalike: image i is all `fill + i`, its label is i % 10."""
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.broadcast_to((fill + np.arange(n, dtype=np.uint8))[:, None, None], (n, 28, 28)).copy()
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        arrays[prefix] = images
    return arrays


# ----------------------------------------------------------------------------- Fashion-MNIST

@needs_system_fmnist
@pytest.mark.parametrize("split, count", [("train", 60_000), ("test", 10_000), ("all", 70_000)])
def test_fashion_mnist_full_splits(split, count):
    data = build(name="fashion-mnist", split=split)
    assert data.images.shape == (count, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64 and data.num_classes == 10
    assert torch.bincount(data.labels).tolist() == [count // 10] * 10  # balanced: 6,000 / 1,000 per class
    assert str(SYSTEM_FMNIST) in data.source and data.notes == []


@needs_system_fmnist
def test_fashion_mnist_system_test_split_is_the_embedded_sample():
    system, sample = build(name="fashion-mnist", split="test"), build(name="fashion-mnist-sample")
    assert torch.equal(system.images, sample.images) and torch.equal(system.labels, sample.labels)
    assert system.labels[:10].tolist() == T10K_FIRST_LABELS


def test_fashion_mnist_data_root_is_used(tmp_path):
    arrays = write_fmnist(tmp_path, n_train=5, n_test=3, fill=100)
    data = build(name="fashion-mnist", root=str(tmp_path))
    assert torch.equal(data.images[:, 0], torch.from_numpy(arrays["train"]))
    assert data.labels.tolist() == [0, 1, 2, 3, 4] and str(tmp_path) in data.source
    both = build(name="fashion-mnist", root=str(tmp_path), split="all")
    assert both.images[:, 0, 0, 0].tolist() == [100, 101, 102, 103, 104, 100, 101, 102]  # train then test


def test_fashion_mnist_env_var_is_used_and_data_root_comes_first(tmp_path, monkeypatch):
    write_fmnist(tmp_path / "env", n_train=4, n_test=2, fill=50)
    write_fmnist(tmp_path / "root", n_train=6, n_test=2, fill=10)
    monkeypatch.setenv("GENZOO_DATA", str(tmp_path / "env"))
    assert len(build(name="fashion-mnist")) == 4  # before the system path, even where that one exists
    data = build(name="fashion-mnist", root=str(tmp_path / "root"))
    assert len(data) == 6 and data.images[0, 0, 0, 0] == 10


def test_fashion_mnist_torchvision_layout_with_real_uncompressed_files(tmp_path, monkeypatch):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for kind in ("images-idx3", "labels-idx1"):
        source = fmnist_module.EMBEDDED / f"t10k-{kind}-ubyte.gz"
        with gzip.open(source, "rb") as compressed, open(raw / f"t10k-{kind}-ubyte", "wb") as plain:
            shutil.copyfileobj(compressed, plain)
    monkeypatch.setattr(fmnist_module, "SYSTEM_PATHS", ())
    data = build(name="fashion-mnist", root=str(tmp_path), split="test")
    assert data.images.shape == (10_000, 1, 28, 28) and data.notes == [] and str(tmp_path) in data.source
    assert data.labels[:10].tolist() == T10K_FIRST_LABELS
    assert torch.equal(data.images, build(name="fashion-mnist-sample").images)


@pytest.mark.parametrize("split", ["train", "all"])
def test_fashion_mnist_falls_back_to_embedded_test_split_with_a_note(tmp_path, monkeypatch, split):
    monkeypatch.setattr(fmnist_module, "SYSTEM_PATHS", ())
    write_fmnist(tmp_path, n_train=0, n_test=3)  # $GENZOO_DATA without train files is passed over
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    monkeypatch.setenv("GENZOO_DATA", str(tmp_path))  # (an explicit data.root without them is an error instead)
    data = build(name="fashion-mnist", split=split)
    assert data.images.shape == (10_000, 1, 28, 28) and data.labels[:10].tolist() == T10K_FIRST_LABELS
    assert len(data.notes) == 1 and "embedded" in data.notes[0] and str(tmp_path) in data.notes[0]


def test_fashion_mnist_sample_is_always_the_10k_test_split(tmp_path, monkeypatch):
    write_fmnist(tmp_path, n_train=5, n_test=5)
    monkeypatch.setenv("GENZOO_DATA", str(tmp_path))
    data = build(name="fashion-mnist-sample", root=str(tmp_path), split="train")
    assert data.images.shape == (10_000, 1, 28, 28) and data.num_classes == 10
    assert torch.bincount(data.labels).tolist() == [1000] * 10


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: _truncate(p, 16 + 28 * 28 * 2 + 100), id="truncated-body"),
        pytest.param(lambda p: p.write_bytes(b"this is not an IDX file\n" * 10), id="not-idx"),
        pytest.param(lambda p: p.write_bytes(b"\x00\x00\x09\x03" + b"\x00" * 40), id="wrong-dtype"),
        pytest.param(lambda p: _truncate(p, 10), id="truncated-header"),
    ],
)
def test_fashion_mnist_damaged_idx_raises_data_error(tmp_path, damage):
    write_fmnist(tmp_path, n_train=3, n_test=1, suffix="")  # uncompressed: damage the bytes directly
    bad = tmp_path / "train-images-idx3-ubyte"
    damage(bad)
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        build(name="fashion-mnist", root=str(tmp_path))


def test_fashion_mnist_damaged_gzip_raises_data_error(tmp_path):
    write_fmnist(tmp_path, n_train=50, n_test=1)
    _truncate(tmp_path / "train-images-idx3-ubyte.gz", 60)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        build(name="fashion-mnist", root=str(tmp_path))
    write_fmnist(tmp_path, n_train=50, n_test=1)  # repair, then break the labels: not gzip at all
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"plain text, not gzip")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        build(name="fashion-mnist", root=str(tmp_path))


def test_fashion_mnist_images_and_labels_of_different_lengths_raise(tmp_path):
    write_fmnist(tmp_path, n_train=4, n_test=1)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="do not match"):
        build(name="fashion-mnist", root=str(tmp_path))


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: (p / "a-file").write_text("x") and p / "a-file"])
def test_fashion_mnist_root_that_is_not_a_folder_raises(tmp_path, make):
    with pytest.raises(DataError, match="not a folder"):
        build(name="fashion-mnist", root=str(make(tmp_path)))


# ----------------------------------------------------------------------------- batches and conform

def test_batch_maps_uint8_exactly_to_minus_one_one_and_keeps_int64_labels():
    images = torch.tensor([0, 255, 51, 204], dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 1, 2, 2).contiguous()
    data = ImageData(images, torch.tensor([3, 1, 4, 1]), num_classes=5)
    batch = data.batch(torch.tensor([1, 0, 3]))
    assert batch["image"].dtype == torch.float32 and batch["image"].shape == (3, 1, 2, 2)
    assert batch["image"][:, 0, 0, 0].tolist() == pytest.approx([1.0, -1.0, 0.6])
    assert batch["image"][1].eq(-1.0).all() and batch["image"][0].eq(1.0).all()  # exact ends
    assert batch["label"].dtype == torch.int64 and batch["label"].tolist() == [1, 3, 1]
    assert set(data.batch(torch.arange(4))) == {"image", "index", "label"} and data.keys == ("image", "index", "label")
    assert data.batch(torch.tensor([2, 0]))["index"].tolist() == [2, 0]  # the stable index of each image (GLO)
    assert set(ImageData(images).batch(torch.arange(2))) == {"image", "index"}


def test_empty_image_data_raises():
    with pytest.raises(DataError, match="no images"):
        ImageData(torch.zeros(0, 1, 4, 4, dtype=torch.uint8), source="nowhere")


def test_conform_max_images_channels_and_size():
    sample = build(name="fashion-mnist-sample", max_images=6)
    assert sample.images.shape == (6, 1, 28, 28) and sample.labels.tolist() == T10K_FIRST_LABELS[:6]
    rgb = build(name="fashion-mnist-sample", max_images=6, channels=3, image_size=32)
    assert rgb.images.shape == (6, 3, 32, 32) and rgb.info.channels == 3 and rgb.info.image_size == 32
    assert torch.equal(rgb.images[:, 0], rgb.images[:, 1]) and torch.equal(rgb.images[:, 0], rgb.images[:, 2])
    small = build(name="fashion-mnist-sample", max_images=2, image_size=14)
    assert small.images.shape == (2, 1, 14, 14)


def test_conform_resize_keeps_a_flat_image_flat():
    data = ImageData(torch.full((2, 3, 28, 28), 200, dtype=torch.uint8))
    out = conform(data, DataConfig(image_size=32))
    assert out.images.shape == (2, 3, 32, 32) and out.images.eq(200).all()


def test_conform_rgb_to_grey_uses_luma_weights():
    colours = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8)  # pure R, G, B
    data = ImageData(colours.view(3, 3, 1, 1).expand(3, 3, 4, 4).contiguous())
    grey = conform(data, DataConfig(channels=1)).images
    assert grey.shape == (3, 1, 4, 4)
    assert grey[:, 0, 0, 0].tolist() == pytest.approx([76, 150, 29], abs=1)  # 0.299 R + 0.587 G + 0.114 B


def test_conform_grey_rgb_grey_round_trip_is_exact():
    grey = torch.arange(0, 256, dtype=torch.uint8).view(1, 1, 16, 16)
    rgb = conform(ImageData(grey.clone()), DataConfig(channels=3))
    back = conform(rgb, DataConfig(channels=1))
    assert torch.equal(back.images, grey)


# ----------------------------------------------------------------------------- image-folder

def save(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def flat(mode: str, size: tuple[int, int], value) -> Image.Image:
    return Image.new(mode, size, value)


def test_image_folder_recursive_mixed_sizes_and_grey(tmp_path):
    save(tmp_path / "a.png", flat("L", (10, 10), 10))
    save(tmp_path / "deep" / "er" / "b.jpg", flat("L", (40, 30), 128))  # non-square
    save(tmp_path / "deep" / "c.bmp", flat("L", (1, 1), 250))  # 1 x 1, resized up
    (tmp_path / "notes.txt").write_text("not an image, ignored")
    data = build(name="image-folder", root=str(tmp_path), image_size=16)
    assert data.images.shape == (3, 1, 16, 16) and data.labels is None and data.num_classes is None
    # sorted paths: a.png, deep/c.bmp, deep/er/b.jpg
    assert data.images[0].eq(10).all() and data.images[1].eq(250).all()
    assert (data.images[2].int() - 128).abs().max() <= 2  # jpeg


def test_image_folder_default_size_is_64_and_non_square_is_cropped(tmp_path):
    save(tmp_path / "wide.png", flat("RGB", (40, 30), (1, 2, 3)))
    assert build(name="image-folder", root=str(tmp_path)).images.shape == (1, 3, 64, 64)
    data = build(name="image-folder", root=str(tmp_path), image_size=16)
    assert data.images.shape == (1, 3, 16, 16) and data.images[0, :, 0, 0].tolist() == [1, 2, 3]


def test_image_folder_grey_and_colour_mixed_gives_rgb(tmp_path):
    save(tmp_path / "grey.png", flat("L", (8, 8), 90))
    save(tmp_path / "rgb.png", flat("RGB", (8, 8), (200, 10, 30)))
    data = build(name="image-folder", root=str(tmp_path), image_size=8)
    assert data.images.shape == (2, 3, 8, 8)
    assert data.images[0, :, 0, 0].tolist() == [90, 90, 90] and data.images[1, :, 0, 0].tolist() == [200, 10, 30]
    grey = build(name="image-folder", root=str(tmp_path), image_size=8, channels=1)
    assert grey.images.shape == (2, 1, 8, 8) and grey.images[0].eq(90).all()


def test_image_folder_rgba_palette_and_16_bit(tmp_path):
    save(tmp_path / "1-rgba.png", flat("RGBA", (8, 8), (10, 20, 30, 128)))
    palette = flat("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 250, 100, 5] + [0] * (3 * 254))
    save(tmp_path / "2-palette.png", palette)
    sixteen = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
    assert sixteen.mode == "I;16"
    save(tmp_path / "3-grey16.png", sixteen)
    data = build(name="image-folder", root=str(tmp_path), image_size=8)
    assert data.images.shape == (3, 3, 8, 8)
    assert [data.images[i, :, 4, 4].tolist() for i in range(3)] == [[10, 20, 30], [250, 100, 5], [255, 255, 255]]


def test_image_folder_16_bit_alone_is_grey_and_scaled(tmp_path):
    for name, value in (("dark.png", 0), ("half.png", 257 * 100), ("white.png", 65535)):
        save(tmp_path / name, Image.fromarray(np.full((4, 4), value, dtype=np.uint16)))
    data = build(name="image-folder", root=str(tmp_path), image_size=4)
    assert data.images.shape == (3, 1, 4, 4)
    assert data.images[:, 0, 0, 0].tolist() == [0, 100, 255]  # dark, half, white (sorted)


def test_image_folder_class_subfolders_become_labels(tmp_path):
    for cls, count in (("cat", 2), ("dog", 1), ("emu", 3)):
        for i in range(count):
            save(tmp_path / cls / f"{i}.png", flat("L", (6, 6), 40 * i))
    save(tmp_path / "emu" / "nested" / "x.png", flat("L", (6, 6), 0))  # counts for its top-level class
    data = build(name="image-folder", root=str(tmp_path), image_size=6)
    assert data.num_classes == 3 and data.labels.dtype == torch.int64
    assert data.labels.tolist() == [0, 0, 1, 2, 2, 2, 2]
    assert data.keys == ("image", "index", "label") and data.info.num_classes == 3


def test_image_folder_max_images(tmp_path):
    for i in range(5):
        save(tmp_path / f"{i}.png", flat("L", (4, 4), i))
    data = build(name="image-folder", root=str(tmp_path), image_size=4, max_images=2)
    assert data.images[:, 0, 0, 0].tolist() == [0, 1]


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda p: p.write_bytes(b""), id="zero-bytes"),
        pytest.param(lambda p: p.write_text("hello, I am text\n"), id="text-named-png"),
        pytest.param(
            lambda p: (
                Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(p),
                _truncate(p, len(p.read_bytes()) // 2),
            ),
            id="truncated-png",
        ),
    ],
)
def test_image_folder_undecodable_file_raises_naming_it(tmp_path, write):
    save(tmp_path / "good.png", flat("L", (4, 4), 0))
    write(tmp_path / "broken.png")
    with pytest.raises(DataError, match="broken.png"):
        build(name="image-folder", root=str(tmp_path), image_size=4)


def test_image_folder_missing_empty_or_unset_root_raises(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build(name="image-folder", root=str(tmp_path / "missing"))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="holds no images"):
        build(name="image-folder", root=str(tmp_path / "empty"))
    with pytest.raises(DataError, match="data.root"):
        build(name="image-folder")


# ----------------------------------------------------------------------------- digits and fake

def test_digits():
    pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn")
    data = build(name="digits")
    assert data.images.shape == (1797, 1, 8, 8) and data.images.dtype == torch.uint8
    assert data.num_classes == 10 and sorted(data.labels.unique().tolist()) == list(range(10))
    assert data.images.max() == 255 and data.images.min() == 0  # 0..16 scaled to 0..255
    assert build(name="digits", image_size=32).images.shape == (1797, 1, 32, 32)


def test_fake_is_deterministic_and_sized_by_config():
    first, second = build(name="fake"), build(name="fake")
    assert first.images.shape == (512, 1, 16, 16) and first.num_classes == 2
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    small = build(name="fake", max_images=10, image_size=12, channels=3)
    assert small.images.shape == (10, 3, 12, 12) and small.labels.shape == (10,)
    assert small.images.max() > 0 and set(small.labels.tolist()) <= {0, 1}


def test_build_dataset_unknown_name_lists_known_ones():
    with pytest.raises(ConfigError) as error:
        build(name="imagenet")
    message = str(error.value)
    assert "'imagenet'" in message
    assert all(name in message for name in ("digits", "fake", "fashion-mnist", "fashion-mnist-sample", "image-folder"))


# ----------------------------------------------------------------------------- BatchStream

def indexed(n: int) -> ImageData:
    """Image i is all i and its label is i, so a batch tells which images it holds."""
    return ImageData(torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous(), torch.arange(n))


def draw(stream: BatchStream, count: int) -> list[list[int]]:
    batches = [stream.next() for _ in range(count)]
    for batch in batches:  # the images travel with their labels
        assert torch.equal(((batch["image"][:, 0, 0, 0] + 1) * 127.5).round().long(), batch["label"])
    return [batch["label"].tolist() for batch in batches]


def test_batch_stream_same_seed_same_batches_other_seed_differs():
    data = indexed(40)
    assert draw(BatchStream(data, 8, seed=3), 6) == draw(BatchStream(data, 8, seed=3), 6)
    assert draw(BatchStream(data, 8, seed=3), 6) != draw(BatchStream(data, 8, seed=4), 6)


def test_batch_stream_each_index_once_per_epoch_and_epochs_differ():
    stream = BatchStream(indexed(12), 4, seed=0)
    epochs = [sum(draw(stream, 3), []) for _ in range(3)]
    assert all(sorted(epoch) == list(range(12)) for epoch in epochs)
    assert epochs[0] != epochs[1] != epochs[2]


def test_batch_stream_drops_the_partial_batch():
    stream = BatchStream(indexed(10), 4, seed=0)
    assert stream.batches_per_epoch == 2
    epoch = sum(draw(stream, 2), [])
    assert len(set(epoch)) == 8


@pytest.mark.parametrize("position", [1, 2, 3, 5])
def test_batch_stream_position_resumes_exactly_across_epochs(position):
    data = indexed(10)  # batch 3 -> 3 batches per epoch, so 7 batches span three epochs
    uninterrupted = draw(BatchStream(data, 3, seed=11), 7)
    resumed = BatchStream(data, 3, seed=11)
    resumed.position = position
    assert draw(resumed, 7 - position) == uninterrupted[position:]
    assert resumed.position == 7


def test_batch_stream_ranks_split_the_global_batch():
    data = indexed(30)
    whole = draw(BatchStream(data, 6, seed=5), 8)
    rank0, rank1 = (draw(BatchStream(data, 6, seed=5, rank=r, world_size=2), 8) for r in (0, 1))
    assert [a + b for a, b in zip(rank0, rank1)] == whole
    assert all(len(part) == 3 for part in rank0 + rank1)


def test_batch_stream_rejects_impossible_batches():
    with pytest.raises(DataError, match="fewer than one batch"):
        BatchStream(indexed(5), 8, seed=0)
    with pytest.raises(DataError, match="does not split over 2"):
        BatchStream(indexed(20), 5, seed=0, world_size=2)
    assert len(draw(BatchStream(indexed(5), 5, seed=0), 2)) == 2  # exactly one batch per epoch is fine

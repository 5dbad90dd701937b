"""Paired images (`paired-folder`, `edges2fashion`) and the unpaired two-domain path: exact pixels of
tiny files, both pix2pix layouts, split folders, direction, unmatched names, edges and their cache."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genzoo  # noqa: F401  (fills the registries)
from genzoo.config import DataConfig
from genzoo.data import BatchStream, Dataset, PairedData, build_dataset
from genzoo.data.paired import _cache_folder, canny_edges
from genzoo.errors import DataError


@pytest.fixture(autouse=True)
def _no_genzoo_data(monkeypatch):
    monkeypatch.delenv("GENZOO_DATA", raising=False)


def build(**fields) -> PairedData:
    return build_dataset(DataConfig(**fields))


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def columns(height: int, width: int, offset: int = 0) -> np.ndarray:
    """A grey image whose pixel (r, c) is offset + 10 c + r: every pixel tells where it came from."""
    return offset + 10 * np.arange(width)[None, :] + np.arange(height)[:, None]


def test_aligned_images_are_cut_into_left_and_right_halves(tmp_path):
    save(tmp_path / "0.png", columns(3, 7))  # odd width: A = columns 0..2, B = columns 3..6 (then cropped to 3)
    save(tmp_path / "1.png", columns(3, 6, offset=100))
    data = build(name="paired-folder", root=str(tmp_path), image_size=3)
    assert isinstance(data, Dataset) and data.keys == ("a", "b", "index") and len(data) == 2
    assert data.info.paired is True and data.info.domains == ("A", "B")
    assert data.info.channels == 1 and data.info.image_size == 3
    assert data.images_a[0, 0].tolist() == columns(3, 3).tolist()
    assert data.images_b[0, 0].tolist() == (columns(3, 3) + 30).tolist()  # columns 3, 4, 5 (centre crop of 4)
    assert data.images_b[1, 0].tolist() == (columns(3, 3) + 130).tolist()
    batch = data.batch(torch.tensor([1, 0]))
    assert batch["index"].tolist() == [1, 0] and batch["a"].dtype == torch.float32
    assert ((batch["a"] + 1) * 127.5).round().to(torch.uint8)[0, 0].tolist() == (columns(3, 3) + 100).tolist()


def test_two_folders_pair_by_relative_path_whatever_the_extension(tmp_path):
    for name, value in (("x", 10), ("sub/y", 20), ("a", 30)):
        save(tmp_path / "A" / f"{name}.png", np.full((4, 4), value))
        save(tmp_path / "B" / f"{name}.bmp", np.full((4, 4), value + 100))
    data = build(name="paired-folder", root=str(tmp_path), image_size=4)
    assert data.images_a[:, 0, 0, 0].tolist() == [30, 20, 10]  # sorted: a, sub/y, x
    assert (data.images_b.int() - data.images_a.int()).eq(100).all()  # every a with its own b
    assert "folders A/ and B/" in data.source


def test_unmatched_names_are_an_error_that_lists_a_few(tmp_path):
    for name in "abcde":
        save(tmp_path / "A" / f"{name}.png", np.zeros((2, 2)))
    save(tmp_path / "B" / "a.png", np.zeros((2, 2)))
    save(tmp_path / "B" / "z.png", np.zeros((2, 2)))
    with pytest.raises(DataError, match=r"4 in .*A without a partner \(b, c, d, \.\.\.\) and 1 in .*B without a partner \(z\)"):
        build(name="paired-folder", root=str(tmp_path))


def test_direction_b_to_a_swaps_the_sides_and_their_names(tmp_path):
    save(tmp_path / "0.png", columns(2, 4))
    forward = build(name="paired-folder", root=str(tmp_path), image_size=2)
    backward = build(name="paired-folder", root=str(tmp_path), image_size=2, direction="BtoA")
    assert torch.equal(forward.images_a, backward.images_b) and torch.equal(forward.images_b, backward.images_a)
    assert backward.info.domains == ("B", "A") and "BtoA" in backward.source


@pytest.mark.parametrize("layout", ["aligned", "folders", "folders-in-split"])
def test_split_sub_folders_are_used_when_present(tmp_path, layout):
    def pair(split: str, name: str, value: int) -> None:
        if layout == "aligned":
            save(tmp_path / split / f"{name}.png", np.full((2, 4), value))
        elif layout == "folders":  # A/train, B/train as pix2pix's combine_A_and_B.py reads them
            save(tmp_path / "A" / split / f"{name}.png", np.full((2, 2), value))
            save(tmp_path / "B" / split / f"{name}.png", np.full((2, 2), value))
        else:  # train/A, train/B
            save(tmp_path / split / "A" / f"{name}.png", np.full((2, 2), value))
            save(tmp_path / split / "B" / f"{name}.png", np.full((2, 2), value))

    pair("train", "t", 1)
    pair("val", "v", 2)
    values = {split: build(name="paired-folder", root=str(tmp_path), image_size=2, split=split).images_a[:, 0, 0, 0].tolist()
              for split in ("train", "test")}
    assert values == {"train": [1], "test": [2]}  # test falls back to val/
    if layout != "folders-in-split":
        assert sorted(build(name="paired-folder", root=str(tmp_path), image_size=2, split="all").images_a[:, 0, 0, 0].tolist()) == [1, 2]


def test_a_folder_without_split_folders_serves_every_split_with_a_note_for_test(tmp_path):
    save(tmp_path / "0.png", np.zeros((2, 4)))
    assert build(name="paired-folder", root=str(tmp_path), image_size=2).notes == []
    test = build(name="paired-folder", root=str(tmp_path), image_size=2, split="test")
    assert len(test) == 1 and "no test/ or val/" in test.notes[0]


def test_channels_hold_for_both_sides_and_max_images(tmp_path):
    save(tmp_path / "A" / "0.png", np.full((4, 4), 90))  # grey input
    (tmp_path / "B").mkdir()
    Image.new("RGB", (4, 4), (200, 10, 30)).save(tmp_path / "B" / "0.png")  # colour target
    save(tmp_path / "A" / "1.png", np.full((4, 4), 5))
    save(tmp_path / "B" / "1.png", np.full((4, 4), 6))
    data = build(name="paired-folder", root=str(tmp_path), image_size=4)
    assert data.info.channels == 3 and data.images_a[0, :, 0, 0].tolist() == [90, 90, 90]
    assert data.images_b[0, :, 0, 0].tolist() == [200, 10, 30]
    grey = build(name="paired-folder", root=str(tmp_path), image_size=4, channels=1, max_images=1)
    assert len(grey) == 1 and grey.images_b.shape == (1, 1, 4, 4)
    assert int(grey.images_b[0, 0, 0, 0]) == 69  # round(0.299 R + 0.587 G + 0.114 B)


def test_pairs_stay_together_across_a_stop_and_resume_of_the_stream(tmp_path):
    for i in range(10):
        save(tmp_path / "A" / f"{i}.png", np.full((2, 2), i))
        save(tmp_path / "B" / f"{i}.png", np.full((2, 2), 100 + i))
    data = build(name="paired-folder", root=str(tmp_path), image_size=2)
    stream = BatchStream(data, 4, seed=2)
    uninterrupted = [stream.next() for _ in range(5)]  # 2 batches per epoch: crosses two epochs
    resumed = BatchStream(data, 4, seed=2)
    resumed.position = 3
    for batch in uninterrupted[3:]:
        again = resumed.next()
        assert all(torch.equal(batch[key], again[key]) for key in ("a", "b", "index"))
    for batch in uninterrupted:
        a, b = (((batch[k][:, 0, 0, 0] + 1) * 127.5).round().long() for k in ("a", "b"))
        assert (b - a).eq(100).all() and torch.equal(a, batch["index"])


def test_paired_folder_bad_layouts_raise_one_sentence(tmp_path):
    with pytest.raises(DataError, match="data.root"):
        build(name="paired-folder")
    save(tmp_path / "thin" / "0.png", np.zeros((4, 1)))
    with pytest.raises(DataError, match="too narrow"):
        build(name="paired-folder", root=str(tmp_path / "thin"))
    save(tmp_path / "twice" / "A" / "x.png", np.zeros((2, 2)))
    save(tmp_path / "twice" / "A" / "x.bmp", np.zeros((2, 2)))
    save(tmp_path / "twice" / "B" / "x.png", np.zeros((2, 2)))
    with pytest.raises(DataError, match="two images named 'x'"):
        build(name="paired-folder", root=str(tmp_path / "twice"))
    with pytest.raises(DataError, match="data.domains"):
        build(name="paired-folder", root=str(save(tmp_path / "ok" / "0.png", np.zeros((2, 4))).parent), domains=("A", "B"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        build(name="paired-folder", root=str(tmp_path / "empty"))


# ----------------------------------------------------------------------------- edges2fashion

def square(size: int, start: int, stop: int) -> np.ndarray:
    image = np.zeros((size, size), dtype=np.uint8)
    image[start:stop, start:stop] = 255
    return image


def write_idx_root(folder: Path, images: np.ndarray) -> Path:
    """Fashion-MNIST train files holding `images` (N, 28, 28), labels 0..N-1."""
    folder.mkdir(parents=True, exist_ok=True)
    for kind, array in (("images-idx3", images), ("labels-idx1", np.arange(len(images), dtype=np.uint8))):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
        (folder / f"train-{kind}-ubyte").write_bytes(header + array.astype(np.uint8).tobytes())
    return folder


def test_canny_edges_of_a_square_are_its_outline():
    edges = canny_edges(torch.from_numpy(square(28, 8, 20))[None, None])[0, 0]  # (28, 28) in {0, 255}
    on = edges.eq(255)
    assert set(edges.unique().tolist()) == {0, 255} and 40 <= int(on.sum()) <= 56
    ring = torch.zeros(28, 28, dtype=torch.bool)
    ring[6:22, 6:22] = True
    ring[10:18, 10:18] = False  # within 2 px of the square's border (rows and columns 8 and 19)
    assert not (on & ~ring).any() and on[8:20, 7:9].any(dim=1).all()  # every row of the left side has an edge
    assert canny_edges(torch.zeros(1, 1, 28, 28, dtype=torch.uint8)).eq(0).all()  # a flat image has none


def test_edges2fashion_pairs_edges_with_images_and_caches_the_edges(tmp_path):
    images = np.stack([square(28, 8, 20), square(28, 4, 24), np.zeros((28, 28), np.uint8)])
    root = write_idx_root(tmp_path / "fmnist", images)
    data = build(name="edges2fashion", root=str(root))
    assert data.info.paired is True and data.info.domains == ("edges", "fashion") and len(data) == 3
    assert data.images_b[:, 0].numpy().tolist() == images.tolist()  # b: the images as they are
    assert torch.equal(data.images_a[:1], canny_edges(torch.from_numpy(images[:1])[:, None]))  # a: their edges
    assert data.images_a[2].eq(0).all() and data.images_a[1].eq(255).sum() > data.images_a[0].eq(255).sum()
    cached = list(_cache_folder().glob("edges-*.npy"))
    assert len(cached) == 2  # the square alone (above), the three images
    again = build(name="edges2fashion", root=str(root))
    assert torch.equal(again.images_a, data.images_a) and len(list(_cache_folder().glob("edges-*.npy"))) == 2
    for path in cached:
        path.write_bytes(b"damaged")  # a damaged cache file is recomputed
    assert torch.equal(build(name="edges2fashion", root=str(root)).images_a, data.images_a)
    swapped = build(name="edges2fashion", root=str(root), direction="BtoA", channels=3, image_size=32, max_images=2)
    assert swapped.info.domains == ("fashion", "edges") and swapped.images_a.shape == (2, 3, 32, 32)
    assert swapped.images_b.unique().tolist() == [0, 255]


def test_edges2fashion_without_scikit_image_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(DataError, match="scikit-image"):
        build(name="edges2fashion", max_images=8)


# ----------------------------------------------------------------------------- unpaired two domains

def test_two_classes_as_domains_are_declared_unpaired():
    data = build(name="fake", max_images=64, domains=(0, 1))
    assert data.info.paired is False and data.info.domains == ("0", "1") and data.keys == ("a", "b")

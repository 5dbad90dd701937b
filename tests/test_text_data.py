"""Text datasets (`text`, `fortunes`): exact tokens of tiny files, windows, splits, vocabulary, bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import genzoo  # noqa: F401  (fills the registries)
from genzoo.config import DataConfig
from genzoo.data import BatchStream, Dataset, TextData, build_dataset
from genzoo.data import text as text_module
from genzoo.data.text import decode, encode
from genzoo.errors import DataError

SYSTEM_FORTUNES = text_module.FORTUNES
needs_system_fortunes = pytest.mark.skipif(
    not SYSTEM_FORTUNES.is_dir(), reason=f"Debian package fortunes not installed at {SYSTEM_FORTUNES} (.ci/run installs it)")


def build(**fields) -> TextData:
    return build_dataset(DataConfig(**fields))


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_tokens_are_the_sorted_characters_and_windows_share_one_token(tmp_path):
    corpus = write(tmp_path / "a.txt", "abcabdabce\n")  # 11 characters, vocabulary "\nabcde"
    data = build(name="text", root=str(corpus), split="all", sequence_length=3)
    info = data.info
    assert info.vocabulary == "\nabcde" and info.vocab_size == 6 and info.sequence_length == 3
    assert isinstance(data, Dataset) and data.keys == ("tokens", "index") and len(data) == 3 == info.num_images  # (11 - 1) // 3
    batch = data.batch(torch.arange(3))
    assert batch["tokens"].dtype == torch.int64 and batch["tokens"].shape == (3, 4)
    assert batch["tokens"].tolist() == [[1, 2, 3, 1], [1, 2, 4, 1], [1, 2, 3, 5]]  # "abca", "abda", "abce"
    assert decode(batch["tokens"], info) == ["abca", "abda", "abce"]  # window i = characters [3i, 3i + 4)
    assert batch["index"].tolist() == [0, 1, 2]
    assert data.batch(torch.tensor([2, 0]))["tokens"][:, 0].tolist() == [1, 1]


def test_splits_are_the_first_90_and_last_10_percent_with_one_vocabulary(tmp_path):
    corpus = write(tmp_path / "a.txt", "0123456789" * 2)  # 20 characters: train [0, 18), test [18, 20)
    (corpus.parent / "b.txt").write_text("XY")  # a second file: 22 characters, cut at 22 * 9 // 10 = 19
    train = build(name="text", root=str(tmp_path), split="train", sequence_length=2)
    test = build(name="text", root=str(tmp_path), split="test", sequence_length=2)
    whole = build(name="text", root=str(tmp_path), split="all", sequence_length=2)
    assert train.info.vocabulary == test.info.vocabulary == "0123456789XY"  # of the WHOLE corpus: X is only in test
    assert decode(train.tokens, train.info) == "0123456789012345678" and len(train) == 9
    assert decode(test.tokens, test.info) == "9XY" and len(test) == 1
    assert decode(test.batch(torch.tensor([0]))["tokens"][0], test.info) == "9XY"
    assert len(whole.tokens) == 22 and len(whole) == 10 and "tokens [19, 22)" in test.source


def test_folder_is_read_recursively_in_sorted_order_skipping_hidden_files(tmp_path):
    write(tmp_path / "b" / "z.txt", "3")
    write(tmp_path / "a.txt", "1")
    write(tmp_path / "b" / "a.txt", "2")
    write(tmp_path / ".hidden.txt", "H")
    write(tmp_path / ".git" / "config", "G")
    data = build(name="text", root=str(tmp_path), split="all", sequence_length=1)
    assert decode(data.tokens, data.info) == "123" and "3 files" in data.source


def test_bytes_read_any_encoding_with_a_vocabulary_of_256(tmp_path):
    corpus = write(tmp_path / "latin1.txt", "café".encode("latin-1"))  # é is one byte 0xe9: not UTF-8
    data = build(name="text", root=str(corpus), split="all", tokens="bytes", sequence_length=3)
    assert data.info.vocabulary is None and data.info.vocab_size == 256
    assert data.batch(torch.tensor([0]))["tokens"].tolist() == [[99, 97, 102, 0xE9]]
    utf8 = build(name="text", root=str(write(tmp_path / "u.txt", "é!é")), split="all", tokens="bytes", sequence_length=4)
    assert utf8.tokens.tolist() == [0xC3, 0xA9, 33, 0xC3, 0xA9] and decode(utf8.tokens, utf8.info) == "é!é"
    with pytest.raises(DataError, match=r"latin1.txt.*not UTF-8.*data.tokens=bytes"):
        build(name="text", root=str(corpus), split="all", sequence_length=3)


def test_encode_and_decode_invert_each_other():
    info = TextData(torch.zeros(2, dtype=torch.int64), 1, "\n ,abé").info
    assert encode("a, bé\n", info).tolist() == [3, 2, 1, 4, 5, 0]
    assert decode(encode("a, bé\n", info), info) == "a, bé\n" and decode([3, 3], info) == "aa"
    with pytest.raises(DataError, match="not in the model's vocabulary"):
        encode("abz", info)
    raw = TextData(torch.zeros(2, dtype=torch.int64), 1, None).info
    assert encode("é", raw).tolist() == [0xC3, 0xA9] and decode([0xC3], raw) == "\ufffd"  # a cut character


def test_max_images_keeps_the_first_windows_and_the_stream_resumes_exactly(tmp_path):
    corpus = write(tmp_path / "a.txt", "".join(chr(65 + i % 26) for i in range(200)))
    capped = build(name="text", root=str(corpus), split="all", sequence_length=4, max_images=5)
    assert len(capped) == 5
    data = build(name="text", root=str(corpus), sequence_length=4)  # train: 180 characters, 44 windows
    assert len(data) == 44
    stream = BatchStream(data, 8, seed=1)
    uninterrupted = [stream.next()["tokens"] for _ in range(9)]  # 5 batches per epoch: crosses an epoch
    resumed = BatchStream(data, 8, seed=1)
    resumed.position = 4
    assert all(torch.equal(batch, resumed.next()["tokens"]) for batch in uninterrupted[4:])


def test_fortunes_skips_index_files_u8_links_and_reads_data_root(tmp_path):
    write(tmp_path / "art", "one\n%\ntwo\n")
    write(tmp_path / "art.dat", b"\x00\x00\x00\x02binary index")
    (tmp_path / "art.u8").symlink_to(tmp_path / "art")
    (tmp_path / "copy").symlink_to(tmp_path / "art")
    write(tmp_path / "zen", "three\n")
    data = build(name="fortunes", root=str(tmp_path), split="all", sequence_length=4)
    assert decode(data.tokens, data.info) == "one\n%\ntwo\nthree\n" and "2 files" in data.source


@needs_system_fortunes
def test_the_system_fortunes_corpus_loads_in_full():
    data = build(name="fortunes", split="all")
    assert len(data.tokens) > 2_400_000 and 90 < data.info.vocab_size < 200  # 2.58 M characters, 113 distinct
    assert list(data.info.vocabulary) == sorted(set(data.info.vocabulary)) and "%\n" in decode(data.tokens[:2000], data.info)
    train, test = build(name="fortunes"), build(name="fortunes", split="test")
    assert len(train.tokens) + len(test.tokens) == len(data.tokens)
    assert train.info.vocabulary == test.info.vocabulary == data.info.vocabulary


def test_fortunes_without_the_package_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(text_module, "FORTUNES", tmp_path / "missing")
    with pytest.raises(DataError, match="apt-get install fortunes"):
        build(name="fortunes")


@pytest.mark.parametrize("content, phrase", [
    ("", "holds no text"),
    ("abc", "fewer than one window"),  # train: the first 2 characters, a window needs 5
])
def test_empty_and_too_short_corpora_raise_one_sentence(tmp_path, content, phrase):
    corpus = write(tmp_path / "a.txt", content)
    with pytest.raises(DataError, match=phrase):
        build(name="text", root=str(corpus), sequence_length=4)


def test_missing_root_empty_folder_and_image_keys_raise(tmp_path):
    with pytest.raises(DataError, match="data.root"):
        build(name="text")
    with pytest.raises(DataError, match="does not exist"):
        build(name="text", root=str(tmp_path / "missing"))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no files"):
        build(name="text", root=str(tmp_path / "empty"))
    with pytest.raises(DataError, match="data.image_size"):
        build(name="text", root=str(write(tmp_path / "a.txt", "x" * 300)), image_size=32)

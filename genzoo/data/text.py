"""Text as token windows: a UTF-8 file or a folder of files (`text`), and the Debian `fortunes` corpus.

- `data.root`: one file, or a folder whose files (recursive, sorted by path; hidden files and
  folders skipped) are concatenated as they are: no newline, BOM or Unicode normalisation.
- `data.tokens=chars` (default): one token per Unicode character. The vocabulary is the sorted
  distinct characters of the WHOLE corpus (every split), so train and test share token ids, and a
  family can embed the test text it never trained on. The files must be UTF-8.
  `data.tokens=bytes`: one token per byte, vocabulary 256, any encoding.
- Splits are a fixed held-out slice of the token stream of n tokens: `train` = tokens
  [0, floor(0.9 n)), the first 90%; `test` = [floor(0.9 n), n), the last 10%; `all` = everything.
- Windows: with L = `data.sequence_length` (default 128), window i of a split holds its tokens
  [i L, i L + L + 1): L + 1 tokens, so that a model reads L and predicts the L next. Consecutive
  windows share one token (the last of one is the first of the next) and overlap nowhere else; the
  tail shorter than a window is dropped. `data.max_images` keeps the first N windows.
- Batches `{"tokens": (B, L + 1) int64, "index": (B,) int64}` (index = the window's number).
  `DataInfo` has `vocabulary` (the characters in token order; None for bytes), `vocab_size` and
  `sequence_length`. `decode(tokens, info)` and `encode(text, info)` convert between the two.
Loading is one read and one table look-up (the 2.5 M characters of `fortunes` load in about 0.1 s),
so nothing is cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.info import DataInfo
from genzoo.errors import DataError
from genzoo.registry import DATASETS

TRAIN_FRACTION = (9, 10)  # split=train: the first 9/10 of the token stream; test: the rest
FORTUNES = Path("/usr/share/games/fortunes")  # Debian package `fortunes`


@dataclass
class TextData:
    """A split's token stream (n,) int64, cut into windows of `sequence_length + 1` tokens on demand."""

    tokens: Tensor  # (n,) int64
    sequence_length: int  # L: a window holds L + 1 tokens
    vocabulary: str | None  # the characters in token order; None: bytes (vocabulary 256)
    source: str = ""  # where the text came from and which part of it, for messages and reports
    notes: list[str] = field(default_factory=list)
    max_windows: int | None = None  # data.max_images: keep only the first N windows
    split: str | None = None  # the part of the stream these windows are (train, test, all)

    @property
    def keys(self) -> tuple[str, ...]:
        return ("tokens", "index")

    @property
    def info(self) -> DataInfo:
        return DataInfo(num_images=len(self), vocabulary=self.vocabulary, sequence_length=self.sequence_length,
                        vocab_size=256 if self.vocabulary is None else len(self.vocabulary))

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    def __len__(self) -> int:
        windows = (len(self.tokens) - 1) // self.sequence_length
        return windows if self.max_windows is None else min(windows, self.max_windows)

    def to(self, device: torch.device | str) -> TextData:
        self.tokens = self.tokens.to(device)
        return self

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        offsets = torch.arange(self.sequence_length + 1, device=indices.device)  # (L + 1,)
        positions = indices[:, None] * self.sequence_length + offsets  # (B, L + 1): window i starts at i L
        return {"tokens": self.tokens[positions], "index": indices}


# ----------------------------------------------------------------------------- tokens <-> text

def encode(text: str, info: DataInfo) -> Tensor:
    """The tokens (n,) int64 of `text` in the vocabulary of `info` (characters, or UTF-8 bytes)."""
    if info.vocabulary is None:
        return torch.tensor(list(text.encode("utf-8")), dtype=torch.int64)
    index = {character: i for i, character in enumerate(info.vocabulary)}
    unknown = sorted({character for character in text if character not in index})
    if unknown:
        raise DataError(f"the text has characters that are not in the model's vocabulary ({''.join(unknown)[:20]!r}); "
                        "use only characters of its training corpus.")
    return torch.tensor([index[character] for character in text], dtype=torch.int64)


def decode(tokens: Tensor | list[int], info: DataInfo) -> str | list[str]:
    """The text of tokens (n,) as a string, or of (B, n) as a list of B strings; bytes that are not
    valid UTF-8 become U+FFFD."""
    values = tokens.tolist() if isinstance(tokens, Tensor) else list(tokens)
    if values and isinstance(values[0], list):
        return [decode(row, info) for row in values]  # type: ignore[misc]
    if info.vocabulary is None:
        return bytes(values).decode("utf-8", errors="replace")
    return "".join(info.vocabulary[value] for value in values)


# ----------------------------------------------------------------------------- reading a corpus

def _files(root: Path, what: str, skip_suffixes: tuple[str, ...] = (), skip_links: bool = False) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"{what} {str(root)!r} does not exist; set data.root to a UTF-8 text file or a folder of them.")
    files = sorted(
        path for path in root.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and path.suffix not in skip_suffixes and not (skip_links and path.is_symlink())
    )
    if not files:
        raise DataError(f"{what} {str(root)!r} holds no files; put text files in it or point data.root at one.")
    return files


def _read(files: list[Path], tokens: str) -> tuple[np.ndarray, str | None]:
    """The token stream (n,) int64 of the concatenated files and its vocabulary (None for bytes)."""
    raw = [path.read_bytes() for path in files]
    if tokens == "bytes":
        return np.frombuffer(b"".join(raw), dtype=np.uint8).astype(np.int64), None
    texts = []
    for path, content in zip(files, raw):
        try:
            texts.append(content.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise DataError(f"{str(path)!r} is not UTF-8 text (byte 0x{content[error.start]:02x} at offset "
                            f"{error.start}); convert it to UTF-8 or set data.tokens=bytes.") from None
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)  # (n,) code points
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64), ""
    present = np.flatnonzero(np.bincount(codes))  # the distinct code points, sorted
    table = np.zeros(int(present[-1]) + 1, dtype=np.int64)
    table[present] = np.arange(len(present))
    return table[codes], "".join(map(chr, present))


def load_text(files: list[Path], config: DataConfig, name: str, where: str) -> TextData:
    """Read `files` as one token stream, take `config.split` of it and cut it into windows."""
    stream, vocabulary = _read(files, config.tokens)
    n, length = len(stream), config.sequence_length
    if n == 0:
        raise DataError(f"{where} holds no text (its files are empty); give data.root a file with text in it.")
    cut = n * TRAIN_FRACTION[0] // TRAIN_FRACTION[1]
    start, stop = {"train": (0, cut), "test": (cut, n), "all": (0, n)}[config.split]
    if stop - start < length + 1:
        raise DataError(f"split {config.split!r} of {where} has {stop - start} tokens, fewer than one window of "
                        f"data.sequence_length + 1 = {length + 1}; lower data.sequence_length or give more text.")
    unit = "bytes" if vocabulary is None else f"characters ({len(vocabulary)} distinct)"
    part = {"train": "the first 90%", "test": "the last 10%", "all": "all"}[config.split]
    data = TextData(torch.from_numpy(stream[start:stop]), length, vocabulary, max_windows=config.max_images, split=config.split)
    data.source = (f"{name}: {n:,} {unit} in {len(files)} file{'s' * (len(files) != 1)} from {where}; split "
                   f"{config.split!r} = {part} of the stream, tokens [{start:,}, {stop:,}): "
                   f"{len(data):,} windows of {length + 1}")
    return data


@DATASETS.register("text")
def text(config: DataConfig) -> TextData:
    """A UTF-8 text file or folder of them, as character (or byte) windows; 90% train / 10% test."""
    if config.root is None:
        raise DataError("the text dataset needs a file or folder: set data.root=PATH (or --data-root PATH).")
    root = Path(config.root).expanduser()
    return load_text(_files(root, "text file or folder"), config, "text", str(root))


@DATASETS.register("fortunes")
def fortunes(config: DataConfig) -> TextData:
    """The Debian `fortunes` corpus (2.5 M characters, offline), as character windows; 90% train / 10% test."""
    root = Path(config.root).expanduser() if config.root else FORTUNES
    if config.root is None and not root.is_dir():
        raise DataError(f"the fortunes dataset needs the Debian package fortunes ({FORTUNES} is missing); run "
                        "`apt-get install fortunes`, or set data.root to a folder of fortune files.")
    files = _files(root, "fortunes folder", skip_suffixes=(".dat", ".u8"), skip_links=True)
    return load_text(files, config, "fortunes", str(root))

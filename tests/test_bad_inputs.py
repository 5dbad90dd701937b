"""The bad-input corpus (issue 7): every command and every data path, fed what users really feed them.

Each case in `CASES` builds its files in a temporary folder (images and checkpoints are generated
here from small tables; the few text files are in tests/bad_inputs/) and runs one `genzoo` command.
Each must end the same way: exit code 2, exactly one line on stderr that starts with `error:` and
names the problem, no traceback anywhere, and every file in the folder (bytes and mtimes) as it was.
Most run in-process; the cases marked `process=True` run `python -m genzoo` for the real exit code
and the real stderr encoding. `GOOD_FOLDER` holds the odd but valid images that must work: 16-bit
and 48-bit PNGs, 1 x 1, grey + RGB + RGBA + palette + CMYK in one folder, a non-UTF-8 file name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_MODELS, tiny_config
from test_cli import genzoo as run_in_process

CORPUS = Path(__file__).parent / "bad_inputs"
FAKE = ["data.name=fake", "data.image_size=16", "data.max_images=64", "train.steps=2", "train.batch_size=8",
        "--no-progress"]
VAE = ["vae", *FAKE, "model.latent_dim=4", "model.width=4"]
GAN = ["gan", *FAKE, "model.latent_dim=8", "model.generator_width=4", "model.discriminator_width=4"]
FMNIST = [*VAE, "data.name=fashion-mnist"]
NERF = ["nerf", "model.depth=2", "model.width=8", "model.skip=1", "model.samples=4", "model.fine_samples=4",
        "train.steps=1", "train.batch_size=8", "--no-progress"]
POSED = [*NERF, "data.name=posed-images", "data.image_size=16"]
EYE = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 3], [0, 0, 0, 1]]  # a camera 3 units up the z axis
INCEPTION = ["--extractor", "inception", "--inception-weights"]
FOLDER = ["vae", "model.latent_dim=4", "model.width=4", "data.name=image-folder", "data.image_size=16",
          "train.steps=1", "train.batch_size=2", "--no-progress"]
STYLIZE = lambda t: ["-o", t / "out.png", "--run-dir", t / "run", "--size", "16", "--steps", "1", "--no-progress"]  # noqa: E731
TEXT = ["vae", "model.latent_dim=4", "model.width=4", "data.name=text", "data.sequence_length=8", "train.steps=1",
        "train.batch_size=2", "--no-progress"]
TRANSLATION = {name: [name, *FAKE, "model.width=4", "model.discriminator_width=4"] for name in ("pix2pix", "cyclegan", "stargan")}
TRANSLATION["stargan"].append("data.classes=null")  # the preset's three Fashion-MNIST classes
PAIRED = ["vae", "model.latent_dim=4", "model.width=4", "data.name=paired-folder", "data.image_size=16", "train.steps=1",
          "train.batch_size=2", "--no-progress"]
NON_UTF8 = os.fsdecode(b"caf\xe9-\xff")  # Latin-1 bytes in a file name: not decodable as UTF-8
SHAPES = ["data.name=shapes", "data.image_size=16", "data.max_images=64", "train.steps=2", "train.batch_size=8",
          "--no-progress"]
LDM = ["latent-diffusion", *SHAPES, *(f"model.{k}={json.dumps(v)}" for k, v in TINY_MODELS["latent-diffusion"].items()
                                      if k != "first_stage")]
GAN_CLS = ["gan-cls", *SHAPES, *(f"model.{k}={json.dumps(v)}" for k, v in TINY_MODELS["gan-cls"].items())]


# ----------------------------------------------------------------------------- files, from tables

def _png(width: int, height: int, bit_depth: int, colour_type: int, pixels: bytes) -> bytes:
    """A PNG written by hand (for what PIL does not write: 48-bit RGB, absurd sizes); filter 0 rows."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = len(pixels) // height
    raw = b"".join(b"\x00" + pixels[i * row : (i + 1) * row] for i in range(height)) if pixels else b""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _pil(mode: str, size: tuple[int, int], colour, fmt: str = "PNG") -> bytes:  # noqa: ANN001
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def _grey16(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, dtype=np.uint16)).save(buffer, format="PNG")  # mode I;16, 16-bit PNG
    return buffer.getvalue()


def _palette() -> bytes:
    image = Image.new("P", (12, 12), 1)
    image.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


KINDS: dict[str, Callable[[], bytes]] = {
    # valid images
    "grey": lambda: _pil("L", (20, 20), 50),
    "rgb": lambda: _pil("RGB", (24, 18), (200, 30, 10)),
    "rgba": lambda: _pil("RGBA", (18, 24), (10, 30, 200, 0)),  # fully transparent: the colour is kept
    "grey-alpha": lambda: _pil("LA", (16, 16), (90, 255)),
    "palette": _palette,
    "cmyk-jpeg": lambda: _pil("CMYK", (20, 20), (0, 0, 0, 0), "JPEG"),
    "jpeg": lambda: _pil("RGB", (32, 32), (120, 60, 30), "JPEG"),
    "grey16": lambda: _grey16(128 * 257),  # 32896 / 65535 is exactly 128 / 255
    "rgb48": lambda: _png(4, 4, 16, 2, b"\x80\x80" * 3 * 16),  # 16 bits per channel RGB, value 0x8080
    "one-pixel": lambda: _pil("RGB", (1, 1), (10, 200, 30)),
    # broken ones
    "zero-byte": lambda: b"",
    "truncated-png": lambda: _pil("RGB", (64, 64), (1, 2, 3))[:60],
    "truncated-jpeg": lambda: _noisy_jpeg()[:400],
    "text": lambda: b"this is a text file with an image's name\n",
    "html": lambda: b"<!doctype html><html><body>404 not found</body></html>\n",
    "bomb": lambda: _png(30000, 30000, 8, 0, b""),  # 9e8 pixels claimed: PIL refuses it (decompression bomb)
}


def _noisy_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def files(folder: Path, table: dict[str, str]) -> Path:
    """Write `name -> kind` (a key of KINDS, or literal text after 'text:') under `folder`; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, kind in table.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(kind[5:].encode() if kind.startswith("text:") else KINDS[kind]())
    return folder


GOOD = {f"ok-{i}.png": "grey" for i in range(3)}  # three valid images beside a broken one


def idx(shape: tuple[int, ...], body: bytes | None = None) -> bytes:
    """An unsigned-byte IDX file (the MNIST format): magic 0 0 8 ndim, big-endian sizes, data."""
    data = bytes(int(np.prod(shape))) if body is None else body
    return bytes([0, 0, 8, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape) + data


def fmnist_root(tmp: Path, images: bytes, labels: bytes, gz: bool = False) -> Path:
    root = tmp / "fmnist"
    root.mkdir()
    suffix = ".gz" if gz else ""
    (root / f"train-images-idx3-ubyte{suffix}").write_bytes(images)
    (root / f"train-labels-idx1-ubyte{suffix}").write_bytes(labels)
    return root


# ----------------------------------------------------------------------------- runs, built once

@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_text_runs) -> dict[str, Path]:
    """Tiny finished runs (2 steps on fake data): vae, a wider vae (other shapes), gan, cgan, autoencoder, the
    translation families (cyclegan on two blob classes, pix2pix on noisy -> clean blobs, stargan), pixelcnn (8 x 8
    fake images), char-lm (a tiny text file), stylegan; chairs (on rendered chairs);
    and the text-to-image runs of conftest (latent-diffusion on a first stage, gan-cls, autoencoder-kl, on shapes)."""
    from genzoo.api import train

    root = tmp_path_factory.mktemp("built-runs")
    sources = {
        "vae": tiny_config("vae"),
        "vae-wide": tiny_config("vae", model={"width": 8}),
        "gan": tiny_config("gan"),
        "cgan": tiny_config("gan", model={"conditional": "cgan"}),
        "autoencoder": tiny_config("autoencoder"),
        "cyclegan": tiny_config("cyclegan"),
        "pix2pix": tiny_config("pix2pix"),
        "stargan": tiny_config("stargan"),
        "pixelcnn": tiny_config("pixelcnn", sample_every=100),  # 8 x 8 images
        "char-lm": tiny_config("char-lm", sample_every=100),  # tests/text/tiny.txt
        "stylegan": tiny_config("stylegan", sample_every=100),
        "chairs": tiny_config("chairs"),
    }
    for name, config in sources.items():
        train(config, root / name, progress=False)
    return {**{name: root / name for name in sources}, **tiny_text_runs}


class Runs:
    """Copies of the built runs, made inside a case's folder."""

    def __init__(self, built: dict[str, Path], tmp: Path) -> None:
        self.built, self.tmp = built, tmp

    def __call__(self, name: str, as_name: str | None = None) -> Path:
        target = self.tmp / (as_name or name)
        shutil.copytree(self.built[name], target)
        return target


def _damage(run: Path, pattern: str, data: bytes | Callable[[bytes], bytes]) -> Path:
    """Overwrite every file of `run` matching `pattern` (the checkpoint and its kept previous one)."""
    for path in run.glob(pattern):
        path.write_bytes(data(path.read_bytes()) if callable(data) else data)
    return run


def _swap_weights(run: Path, donor: Path) -> Path:
    """Weights of another run copied over this run's (current and previous)."""
    for path in run.glob("model*.safetensors"):
        shutil.copy(donor / "model.safetensors", path)
    return run


def _edit_config(run: Path, edit: Callable[[dict], None]) -> Path:
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))
    return run


# ----------------------------------------------------------------------------- the corpus

@dataclass(frozen=True)
class Case:
    id: str
    phrase: str  # words the one-line message must contain
    argv: Callable[[Path, Runs], list]  # builds its files under the case folder, returns the arguments
    process: bool = False  # run as a real `python -m genzoo` process
    xfail: str | None = None  # "OWNER: ..." where the fix belongs to another part of genzoo


def _posed(t: Path, frames: list | None = None, text: str | None = None, angle: float | None = 0.7) -> Path:
    """A NeRF (Blender) scene folder: a.png (20 x 20), b.jpg (32 x 32) and a transforms.json of `frames` (or raw `text`)."""
    root = files(t / "scene", {"a.png": "grey", "b.jpg": "jpeg"})
    meta = {"frames": frames, **({"camera_angle_x": angle} if angle is not None else {})}
    (root / "transforms.json").write_text(text if text is not None else json.dumps(meta))
    return root


def _posed_case(**scene) -> Callable[[Path, Runs], list]:  # noqa: ANN003
    return lambda t, r: ["train", *POSED, f"data.root={_posed(t, **scene)}", "--out", t / "new"]


def _folder_case(table: dict[str, str], *extra: str) -> Callable[[Path, Runs], list]:
    return lambda t, r: ["train", *FOLDER, f"data.root={files(t / 'images', table)}", *extra, "--out", t / "new"]


CASES = [
    # --- config: overrides on the command line
    Case("config/unknown-top-level-key", "'epochs'", lambda t, r: ["train", *VAE, "epochs=10", "--out", t / "new"]),
    Case("config/unknown-model-key", "model.depth", lambda t, r: ["train", *VAE, "model.depth=3", "--out", t / "new"]),
    Case("config/unknown-data-key", "data.folder", lambda t, r: ["train", *VAE, "data.folder=x", "--out", t / "new"]),
    Case("config/unknown-train-key", "train.learning_rate", lambda t, r: ["train", *VAE, "train.learning_rate=0.1"]),
    Case("config/wrong-type-int", "train.batch_size", lambda t, r: ["train", *VAE, "train.batch_size=many"]),
    Case("config/wrong-type-bool", "data.download", lambda t, r: ["train", *VAE, "data.download=perhaps"]),
    Case("config/wrong-type-list", "data.image_size", lambda t, r: ["train", *VAE, "data.image_size=[16, 16]"]),
    Case("config/batch-size-zero", "train.batch_size", lambda t, r: ["train", *VAE, "train.batch_size=0"]),
    Case("config/lr-negative", "train.lr", lambda t, r: ["train", *VAE, "train.lr=-1"]),
    Case("config/lr-zero", "train.lr", lambda t, r: ["train", *VAE, "train.lr=0"]),
    Case("config/steps-zero", "train.steps", lambda t, r: ["train", *VAE, "train.steps=0"]),
    Case("config/image-size-zero", "data.image_size", lambda t, r: ["train", *VAE, "data.image_size=0"]),
    Case("config/image-size-one", "data.image_size",
         lambda t, r: ["train", *VAE, "data.image_size=1", "--out", t / "new"]),
    Case("config/latent-dim-zero", "model.latent_dim", lambda t, r: ["train", *VAE, "model.latent_dim=0"]),
    Case("config/max-images-negative", "data.max_images", lambda t, r: ["train", *VAE, "data.max_images=-5"]),
    Case("config/ema-decay-one", "train.ema_decay", lambda t, r: ["train", *VAE, "train.ema_decay=1"]),
    Case("config/betas-bad-item", "train.betas", lambda t, r: ["train", *VAE, "train.betas=[0.5, high]"]),
    Case("config/channels-two", "data.channels", lambda t, r: ["train", *VAE, "data.channels=2"]),
    Case("config/override-without-equals", "key=value", lambda t, r: ["train", *VAE, "train.steps:3"]),
    Case("config/override-empty-key", "key=value", lambda t, r: ["train", *VAE, "=3"]),
    Case("config/override-into-a-value", "give all of it as keys",
         lambda t, r: ["train", *VAE, "train.lr=0.1", "train.lr.max=1"]),
    # --- config: YAML files
    Case("yaml/not-a-mapping", "not a mapping", lambda t, r: ["train", CORPUS / "not_a_mapping.yaml"]),
    Case("yaml/empty-file", "'family'", lambda t, r: ["train", CORPUS / "empty.yaml"]),
    Case("yaml/syntax-error", "not valid YAML", lambda t, r: ["train", CORPUS / "bad_syntax.yaml"]),
    Case("yaml/binary-file", "not valid YAML",
         lambda t, r: ["train", _write(t / "weights.yaml", bytes(range(256)) * 4)]),
    Case("yaml/missing-file", "does not exist", lambda t, r: ["train", t / "nowhere.yaml"]),
    Case("yaml/family-not-a-name", "'family'", lambda t, r: ["train", CORPUS / "family_not_a_name.yaml"]),
    Case("yaml/section-not-a-mapping", "'train'", lambda t, r: ["train", CORPUS / "section_not_a_mapping.yaml"]),
    Case("yaml/unknown-model-key", "model.dropout", lambda t, r: ["train", CORPUS / "unknown_model_key.yaml"]),
    Case("yaml/wrong-type", "train.steps", lambda t, r: ["train", CORPUS / "wrong_type.yaml"]),
    # --- data: image folders
    Case("images/zero-byte", "empty.png", _folder_case({**GOOD, "empty.png": "zero-byte"})),
    Case("images/truncated-png", "cut.png", _folder_case({**GOOD, "cut.png": "truncated-png"})),
    Case("images/truncated-jpeg", "cut.jpg", _folder_case({**GOOD, "cut.jpg": "truncated-jpeg"})),
    Case("images/text-named-png", "notes.png", _folder_case({**GOOD, "notes.png": "text"})),
    Case("images/html-named-jpg-in-class", "404.jpg",
         _folder_case({"cats/a.png": "grey", "cats/b.png": "grey", "dogs/404.jpg": "html"})),
    Case("images/decompression-bomb", "huge.png", _folder_case({**GOOD, "huge.png": "bomb"})),
    Case("images/non-utf8-name", r"\udcff", _folder_case({**GOOD, f"{NON_UTF8}.png": "truncated-png"}),
         process=True),
    Case("images/empty-folder", "holds no images", _folder_case({})),
    Case("images/only-non-image-files", "holds no images",
         _folder_case({"readme.txt": "text", "labels.csv": "text:a,b\n", "sub/data.json": "text:{}"})),
    Case("images/missing-folder", "does not exist",
         lambda t, r: ["train", *FOLDER, f"data.root={t / 'missing'}", "--out", t / "new"]),
    Case("images/root-is-a-file", "not a folder",
         lambda t, r: ["train", *FOLDER, f"data.root={files(t, {'one.png': 'grey'}) / 'one.png'}", "--out", t / "new"]),
    Case("images/no-root", "data.root", lambda t, r: ["train", *FOLDER, "--out", t / "new"]),
    Case("images/fewer-than-a-batch", "fewer than one batch", _folder_case({"a.png": "grey"})),
    # --- data: Fashion-MNIST files
    Case("fmnist/junk-files", "not an unsigned-byte IDX",
         lambda t, r: ["train", *FMNIST, f"data.root={fmnist_root(t, b'junk' * 9, b'junk')}"]),
    Case("fmnist/truncated-idx", "truncated",
         lambda t, r: ["train", *FMNIST,
                       f"data.root={fmnist_root(t, idx((60000, 28, 28), bytes(1000)), idx((60000,)))}"]),
    Case("fmnist/not-gzip", "damaged",
         lambda t, r: ["train", *FMNIST, f"data.root={fmnist_root(t, b'junk', b'junk', gz=True)}"]),
    Case("fmnist/counts-differ", "do not match",
         lambda t, r: ["train", *FMNIST, f"data.root={fmnist_root(t, idx((10, 28, 28)), idx((5,)))}"]),
    Case("fmnist/root-is-a-file", "not a folder",
         lambda t, r: ["train", *FMNIST, f"data.root={_write(t / 'fmnist.zip', b'PK')}"]),
    # --- data: text corpora
    Case("text/not-utf8", "data.tokens=bytes",
         lambda t, r: ["train", *TEXT, f"data.root={files(t / 'corpus', {'a.txt': 'text:ok', 'b.txt': 'grey'})}"]),
    Case("text/empty-corpus", "holds no text",
         lambda t, r: ["train", *TEXT, f"data.root={files(t / 'corpus', {'a.txt': 'text:', 'b.txt': 'text:'})}"]),
    Case("text/shorter-than-a-window", "fewer than one window",
         lambda t, r: ["train", *TEXT, f"data.root={files(t / 'corpus', {'a.txt': 'text:hello'}) / 'a.txt'}"]),
    Case("text/folder-without-files", "holds no files",
         lambda t, r: ["train", *TEXT, f"data.root={_mkdir(t / 'corpus' / 'sub').parent}"]),
    Case("text/no-root", "data.root", lambda t, r: ["train", *TEXT, "--out", t / "new"]),
    Case("text/image-size-on-text", "data.image_size",
         lambda t, r: ["train", *TEXT, "data.image_size=16", f"data.root={files(t / 'c', {'a.txt': 'text:' + 'x' * 99})}"]),
    Case("text/unknown-token-kind", "data.tokens", lambda t, r: ["train", *TEXT, "data.tokens=words"]),
    Case("text/sequence-length-zero", "data.sequence_length", lambda t, r: ["train", *TEXT, "data.sequence_length=0"]),
    Case("text/fortunes-root-missing", "does not exist",
         lambda t, r: ["train", *TEXT, "data.name=fortunes", f"data.root={t / 'missing'}"]),
    Case("text/image-family-on-text", "'image'",
         lambda t, r: ["train", *TEXT, f"data.root={files(t / 'c', {'a.txt': 'text:' + 'x' * 99})}", "--out", t / "new"]),
    # --- data: paired images
    Case("paired/unmatched-names", "without a partner",
         lambda t, r: ["train", *PAIRED, f"data.root={files(t / 'p', {'A/x.png': 'grey', 'A/y.png': 'grey', 'B/x.png': 'grey'})}"]),
    Case("paired/same-name-twice", "two images named",
         lambda t, r: ["train", *PAIRED, f"data.root={files(t / 'p', {'A/x.png': 'grey', 'A/x.jpg': 'jpeg', 'B/x.png': 'grey'})}"]),
    Case("paired/broken-image-in-b", "x.png",
         lambda t, r: ["train", *PAIRED, f"data.root={files(t / 'p', {'A/x.png': 'grey', 'B/x.png': 'truncated-png'})}"]),
    Case("paired/too-narrow-for-a-and-b", "too narrow",
         lambda t, r: ["train", *PAIRED, f"data.root={files(t / 'p', {'ab.png': 'one-pixel', **GOOD})}"]),
    Case("paired/empty-folder", "holds no images", lambda t, r: ["train", *PAIRED, f"data.root={_mkdir(t / 'p')}"]),
    Case("paired/no-root", "data.root", lambda t, r: ["train", *PAIRED, "--out", t / "new"]),
    Case("paired/domains-on-pairs", "data.domains",
         lambda t, r: ["train", *PAIRED, "data.domains=[A, B]", f"data.root={files(t / 'p', GOOD)}", "--out", t / "new"]),
    Case("paired/unknown-direction", "data.direction", lambda t, r: ["train", *PAIRED, "data.direction=left"]),
    # --- data: source and target (domain adaptation)
    Case("target/unlabelled-source", "labelled source",
         lambda t, r: ["train", *FOLDER, f"data.root={files(t / 'flat', GOOD)}", "data.target=fake", "--out", t / "new"]),
    Case("target/text-as-target", "must be an image dataset",
         lambda t, r: ["train", *VAE, "data.target.name=text", f"data.target.root={_write(t / 'a.txt', b'x' * 500)}"]),
    Case("target/with-domains", "do not go together", lambda t, r: ["train", *VAE, "data.domains=[0, 1]", "data.target=fake"]),
    Case("target/shorthand-then-a-key", "give all of it as keys (data.target.KEY=VALUE)",
         lambda t, r: ["train", *VAE, "data.target=fake", "data.target.max_images=5"]),
    Case("target/without-a-name", "data.target.name", lambda t, r: ["train", *VAE, "data.target.split=test"]),
    Case("target/unknown-key", "data.target.splt", lambda t, r: ["train", *VAE, "data.target=fake", "data.target.splt=test"]),
    Case("target/unknown-dataset", "unknown dataset", lambda t, r: ["train", *VAE, "data.target=mnist-m"]),
    Case("target/missing-folder", "does not exist",
         lambda t, r: ["train", *VAE, "data.target.name=image-folder", f"data.target.root={t / 'missing'}"]),
    Case("target/on-a-text-dataset", "data.target means nothing",
         lambda t, r: ["train", *TEXT, f"data.root={_write(t / 'a.txt', b'x' * 500)}", "data.target=fake"]),
    # --- data: any dataset
    Case("data/unknown-dataset", "unknown dataset", lambda t, r: ["train", *VAE, "data.name=cifar-11"]),
    Case("data/fewer-images-than-a-batch", "fewer than one batch", lambda t, r: ["train", *VAE, "data.max_images=4"]),
    Case("data/conditional-model-without-labels", "label",
         lambda t, r: ["train", *GAN, "model.conditional=cgan", "data.name=image-folder", "train.batch_size=2",
                       f"data.root={files(t / 'images', GOOD)}", "--out", t / "new"]),
    # --- run folders: train --out, resume
    Case("train/out-is-a-file", "not a writable folder",
         lambda t, r: ["train", *VAE, "--out", _write(t / "run", b"x")]),
    Case("train/out-holds-a-run", "already holds a run", lambda t, r: ["train", *VAE, "--out", r("vae")]),
    Case("train/resume-as-other-family", "cannot resume as 'gan'",
         lambda t, r: ["train", *GAN, "--out", r("vae"), "--resume"]),
    Case("resume/not-a-run", "not a genzoo run folder",
         lambda t, r: ["resume", files(t / "photos", {"a.png": "grey"})]),
    Case("resume/missing-folder", "not a genzoo run folder", lambda t, r: ["resume", t / "missing"]),
    Case("resume/config-damaged", "damaged",
         lambda t, r: ["resume", _damage(r("vae"), "config.json", lambda b: b[: len(b) // 2])]),
    Case("resume/config-not-a-mapping", "mapping",
         lambda t, r: ["resume", _damage(r("vae"), "config.json", b"[1, 2, 3]")]),
    Case("resume/config-unknown-key", "train.epochs",
         lambda t, r: ["resume", _edit_config(r("vae"), lambda c: c["train"].update(epochs=3))]),
    Case("resume/weights-of-other-shape", "model.safetensors",
         lambda t, r: ["resume", _swap_weights(r("vae"), r("vae-wide")), "--steps", "3"]),
    Case("resume/state-damaged", "checkpoint",
         lambda t, r: ["resume", _damage(r("vae"), "training_state*.pt", b"\x80\x04junk")]),
    Case("resume/config-of-other-shape", "does not fit",
         lambda t, r: ["resume", _edit_config(r("vae"), lambda c: c["model"].update(width=8)), "--steps", "3"]),
    Case("resume/steps-zero", "train.steps", lambda t, r: ["resume", r("vae"), "--steps", "0"]),
    # --- sample
    Case("sample/not-a-run", "not a genzoo run folder",
         lambda t, r: ["sample", files(t / "photos", {"a.png": "grey"})]),
    Case("sample/n-zero", "-n", lambda t, r: ["sample", r("vae"), "-n", "0"], process=True),
    Case("sample/weights-of-other-shape", "do not fit",
         lambda t, r: ["sample", _swap_weights(r("vae"), r("vae-wide"))]),
    Case("sample/weights-of-other-family", "'gan'", lambda t, r: ["sample", _swap_weights(r("vae"), r("gan"))]),
    Case("sample/weights-truncated", "damaged",
         lambda t, r: ["sample", _damage(r("vae"), "model*.safetensors", lambda b: b[: len(b) // 2])]),
    Case("sample/weights-missing", "model.safetensors",
         lambda t, r: ["sample", _remove(r("vae"), "model*.safetensors")]),
    Case("sample/config-damaged", "damaged", lambda t, r: ["sample", _damage(r("vae"), "config.json", b"\xff\xfe{")]),
    Case("sample/output-is-a-folder", "cannot write", lambda t, r: ["sample", r("vae"), "-o", _mkdir(t / "grid.png")]),
    Case("sample/output-under-a-file", "is a file",
         lambda t, r: ["sample", r("vae"), "-o", _write(t / "no", b"x") / "g.png"]),
    Case("sample/label-out-of-range", "class indices",
         lambda t, r: ["sample", r("cgan"), "--labels", "7", "-o", t / "g.png"]),
    Case("sample/run-of-unknown-family", "unknown family",
         lambda t, r: ["sample", _edit_config(r("vae"), lambda c: c.update(family="stylegan9"))]),
    Case("sample/truncation-on-a-vae", "truncation", lambda t, r: ["sample", r("vae"), "--truncation", "0.5"]),
    # --- eval
    Case("eval/unknown-metric", "unknown metric", lambda t, r: ["eval", r("vae"), "--metrics", "fid,sharpness"]),
    Case("eval/unknown-extractor", "unknown feature network", lambda t, r: ["eval", r("vae"), "--extractor", "clip"]),
    Case("eval/fmnist-weights-junk", "does not hold weights",
         lambda t, r: ["eval", r("vae"), "--inception-weights", _write(t / "w.safetensors", b"junk"), "-n", "8"]),
    Case("eval/inception-weights-junk", "not a PyTorch weights file",
         lambda t, r: ["eval", r("vae"), *INCEPTION, _write(t / "w.pth", b"junk\n")]),
    Case("eval/inception-weights-missing", "missing",
         lambda t, r: ["eval", r("vae"), *INCEPTION, t / "w.pth"]),
    Case("eval/inception-weights-run-code", "not a PyTorch weights file",  # and the command never ran: no file made
         lambda t, r: ["eval", r("vae"), *INCEPTION, _write(t / "w.pth", pickle.dumps(_RunsCode(t / "ran")))]),
    Case("eval/unknown-split", "--split", lambda t, r: ["eval", r("vae"), "--split", "validation", "-n", "8"]),
    Case("eval/json-in-missing-folder", "does not exist",
         lambda t, r: ["eval", r("vae"), "--metrics", "fid", "--json", t / "no" / "scores.json"]),
    Case("eval/json-is-a-folder", "is a folder", lambda t, r: ["eval", r("vae"), "--metrics", "fid", "--json", t]),
    Case("eval/real-without-fake", "go together", lambda t, r: ["eval", "--real", files(t / "real", GOOD)]),
    Case("eval/nothing-to-evaluate", "give a run folder", lambda t, r: ["eval"]),
    Case("eval/run-and-folders", "not both", lambda t, r: ["eval", r("vae"), "--real", t, "--fake", t]),
    Case("eval/empty-fake-folder", "holds no images",
         lambda t, r: ["eval", "--real", files(t / "real", GOOD), "--fake", _mkdir(t / "fake")]),
    Case("eval/recon-on-folders", "needs a model",
         lambda t, r: ["eval", "--real", files(t / "real", GOOD), "--fake", files(t / "fake", GOOD),
                       "--metrics", "recon"]),
    Case("eval/more-samples-than-fakes", "lower --num-samples",
         lambda t, r: ["eval", "--real", files(t / "real", GOOD), "--fake", files(t / "fake", GOOD),
                       "--metrics", "fid", "-n", "50"]),
    # --- report, demo
    Case("report/missing-folder", "not a genzoo run folder", lambda t, r: ["report", t / "missing"]),
    Case("report/config-damaged", "damaged",
         lambda t, r: ["report", _damage(r("vae"), "config.json", b"{\"family\": ")]),
    Case("demo/out-is-a-file", "not an earlier demo",
         lambda t, r: ["demo", "--out", _write(t / "demo", b"x"), "--steps", "1"]),
    Case("demo/bad-override-keeps-earlier-demo", "train.lr",
         lambda t, r: ["demo", "--out", r("gan", "demo"), "train.lr=-1", "--no-progress"]),
    Case("demo/bad-data-keeps-earlier-demo", "does not exist",
         lambda t, r: ["demo", "--out", r("gan", "demo"), "data.name=image-folder", f"data.root={t / 'missing'}",
                       "--no-progress"]),
    # --- latent
    Case("latent/not-a-run", "not a genzoo run folder", lambda t, r: ["latent", "interpolate", t / "missing"]),
    Case("latent/no-latent-space", "no latent space", lambda t, r: ["latent", "interpolate", r("autoencoder")]),
    Case("latent/rows-zero", "--rows", lambda t, r: ["latent", "interpolate", r("vae"), "--rows", "0"]),
    Case("latent/traverse-one-step", "--steps", lambda t, r: ["latent", "traverse", r("vae"), "--steps", "1"]),
    Case("latent/unknown-class", "Unicorn",
         lambda t, r: ["latent", "arithmetic", r("vae"), "--a", "Unicorn", "--b", "0", "--c", "1", "--num", "16"]),
    Case("latent/output-under-a-file", "is a file",
         lambda t, r: ["latent", "traverse", r("vae"), "-o", _write(t / "no", b"x") / "walk.png"]),
    Case("latent/swap-of-a-one-domain-model", "does not translate", lambda t, r: ["latent", "swap", r("vae"), "-o", t / "s.png"]),
    Case("latent/reconstruct-of-a-gan", "does not reconstruct",
         lambda t, r: ["latent", "reconstruct", r("gan"), "-o", t / "r.png"]),
    # --- families that need particular data
    Case("data/glo-without-stable-indices", "index",
         lambda t, r: ["train", "glo", *FAKE, "model.latent_dim=4", "model.width=4", "data.domains=[0, 1]", "--out", t / "new"]),
    Case("data/swap-with-one-domain", "data.domains",
         lambda t, r: ["train", "swap", *FAKE, "model.latent_dim=4", "model.width=4", "data.domains=[0]", "--out", t / "new"]),
    Case("data/swap-without-domains", "data.domains=[A, B]",
         lambda t, r: ["train", "swap", *FAKE, "model.latent_dim=4", "model.width=4", "data.domains=null", "--out", t / "new"]),
    Case("data/domain-not-a-class", "not a class",
         lambda t, r: ["train", "swap", *FAKE, "model.latent_dim=4", "model.width=4", "data.domains=[0, Boots]", "--out", t / "new"]),
    Case("data/conditional-vae-without-labels", "labelled dataset",
         lambda t, r: ["train", "cvae", *FOLDER[1:],
                       f"data.root={files(t / 'flat', {f'{i}.png': 'grey' for i in range(16)})}", "--out", t / "new"]),
    # --- domain adaptation and the calorimeter (issue 17)
    Case("data/dann-without-target", "data.target=NAME",
         lambda t, r: ["train", "dann", *FAKE, "model.width=4", "model.hidden=8", "data.target=null", "--out", t / "new"]),
    Case("data/dann-images-too-small", "at least 16 px",
         lambda t, r: ["train", "dann", *FAKE, "data.name=digits", "data.image_size=8", "data.target=digits", "--out", t / "new"]),
    Case("data/unknown-target", "unicorn",
         lambda t, r: ["train", "dann", *FAKE, "data.target=unicorn", "--out", t / "new"]),
    Case("data/calo-resized", "cannot be resized",
         lambda t, r: ["train", *VAE, "data.name=calo", "data.image_size=28", "--out", t / "new"]),
    Case("data/calo-target-of-another-shape", "cannot be resized",
         lambda t, r: ["train", "dann", *FAKE, "data.image_size=28", "data.target=calo-data", "--out", t / "new"]),
    Case("data/jets-resized", "cannot be resized",
         lambda t, r: ["train", *VAE, "data.name=jets", "data.image_size=32", "--out", t / "new"]),
    Case("data/jets-one-jet", "at least 2",
         lambda t, r: ["train", *VAE, "data.name=jets", "data.image_size=null", "data.max_images=1", "--out", t / "new"]),
    Case("eval/physics-metrics-on-images", "calorimeter showers",
         lambda t, r: ["eval", r("vae"), "--metrics", "fpd", "-n", "8"]),
    Case("simulate/energy-outside-the-range", "outside the simulated range [1, 200] GeV",
         lambda t, r: ["run", "simulate", "particle=e-", "energy=500", "--out", t / "new"]),
    Case("simulate/negative-energy", "energy", lambda t, r: ["run", "simulate", "energy=-5", "--out", t / "new"]),
    Case("simulate/unknown-particle", "particle", lambda t, r: ["run", "simulate", "particle=mu-", "--out", t / "new"]),
    Case("simulate/run-of-other-images", "not on calorimeter showers",
         lambda t, r: ["run", "simulate", f"run={r('gan')}", "count=8", "--out", t / "new"]),
    Case("sample/guidance-on-an-unconditional-model", "--guidance", lambda t, r: ["sample", r("gan"), "--guidance", "3"]),
    # --- autoregressive models: text sampling, completion
    Case("sample/prompt-outside-the-vocabulary", "not in the model's vocabulary",
         lambda t, r: ["sample", r("char-lm"), "--prompt", "Zebra \u00e9t\u00e9 \u20ac5", "-o", t / "s.txt"]),
    Case("sample/temperature-zero", "above 0", lambda t, r: ["sample", r("char-lm"), "--temperature", "0", "-o", t / "s.txt"]),
    Case("sample/temperature-negative", "above 0",
         lambda t, r: ["sample", r("char-lm"), "--temperature", "-0.5", "-o", t / "s.txt"]),
    Case("sample/top-k-zero", "top-k", lambda t, r: ["sample", r("char-lm"), "--top-k", "0", "-o", t / "s.txt"]),
    Case("sample/fewer-beams-than-samples", "beams",
         lambda t, r: ["sample", r("char-lm"), "-n", "5", "--beam", "2", "-o", t / "s.txt"]),
    Case("sample/temperature-on-an-image-model", "--temperature", lambda t, r: ["sample", r("vae"), "--temperature", "0.8"]),
    Case("sample/prompt-on-an-image-model", "--prompt", lambda t, r: ["sample", r("pixelcnn"), "--prompt", "the"]),
    Case("sample/text-output-is-a-folder", "a folder", lambda t, r: ["sample", r("char-lm"), "-o", _mkdir(t / "out.txt")]),
    Case("complete/rows-beyond-the-image", "--rows 8", lambda t, r: ["complete", r("pixelcnn"), "--rows", "8"]),
    Case("complete/rows-negative", "--rows -1", lambda t, r: ["complete", r("pixelcnn"), "--rows", "-1"]),
    Case("complete/a-text-model", "--prompt", lambda t, r: ["complete", r("char-lm")]),
    Case("complete/a-model-that-does-not-complete", "does not complete", lambda t, r: ["complete", r("vae")]),
    Case("complete/images-folder-missing", "does not exist", lambda t, r: ["complete", r("pixelcnn"), t / "photos", "--rows", "4"]),
    Case("complete/images-folder-without-images", "holds no images",
         lambda t, r: ["complete", r("pixelcnn"), files(t / "photos", {"notes.txt": "text"}), "--rows", "4"]),
    Case("complete/output-under-a-file", "is a file",
         lambda t, r: ["complete", r("pixelcnn"), "--rows", "4", "-o", _write(t / "no", b"x") / "c.png"]),
    Case("eval/image-metrics-of-a-text-model", "--metrics nll", lambda t, r: ["eval", r("char-lm"), "--metrics", "fid", "-n", "200"]),
    Case("train/image-metrics-during-text-training", "--metrics nll",
         lambda t, r: ["train", "char-lm", "data.name=text", f"data.root={_write(t / 'a.txt', b'x' * 500)}", "train.eval_every=1",
                       "--out", t / "new"]),
    Case("data/text-model-on-images", "'tokens'",
         lambda t, r: ["train", "char-lm", *FAKE, "model.width=8", "model.layers=1", "--out", t / "new"]),
    Case("config/transformer-width-not-a-multiple-of-heads", "heads",
         lambda t, r: ["train", "char-transformer", "data.name=text", f"data.root={_write(t / 'a.txt', b'x' * 500)}",
                       "model.width=10", "model.heads=4", "--out", t / "new"]),
    Case("config/even-kernel", "model.kernel_size", lambda t, r: ["train", "pixelcnn", *FAKE, "model.kernel_size=4"]),
    # --- stylize (style transfer)
    Case("stylize/missing-style-image", "does not exist",
         lambda t, r: ["stylize", "skimage:chelsea", t / "starry.jpg", *STYLIZE(t)]),
    Case("stylize/style-not-an-image", "notes.png",
         lambda t, r: ["stylize", "skimage:chelsea", files(t, {"notes.png": "text"}) / "notes.png", *STYLIZE(t)]),
    Case("stylize/truncated-content", "cut.png",
         lambda t, r: ["stylize", files(t, {"cut.png": "truncated-png"}) / "cut.png", "skimage:gravel", *STYLIZE(t)]),
    Case("stylize/content-is-a-folder", "is a folder",
         lambda t, r: ["stylize", _mkdir(t / "photos"), "skimage:gravel", *STYLIZE(t)]),
    Case("stylize/unknown-bundled-photo", "unicorn", lambda t, r: ["stylize", "skimage:unicorn", "skimage:gravel", *STYLIZE(t)]),
    Case("stylize/no-style", "style image", lambda t, r: ["stylize", "skimage:chelsea", *STYLIZE(t)]),
    Case("stylize/vgg-weights-missing", "does not exist",
         lambda t, r: ["stylize", "skimage:chelsea", "skimage:gravel", "--network", "vgg19", "--weights", t / "vgg19.pth", *STYLIZE(t)]),
    Case("stylize/vgg-weights-junk", "not a weights file",
         lambda t, r: ["stylize", "skimage:chelsea", "skimage:gravel", "--network", "vgg19",
                       "--weights", _write(t / "vgg19.pth", b"<html>404</html>"), *STYLIZE(t)]),
    Case("stylize/vgg-weights-of-another-architecture", "does not hold VGG-19 weights",
         lambda t, r: ["stylize", "skimage:chelsea", "skimage:gravel", "--network", "vgg19",
                       "--weights", _tensors(t / "vgg16.safetensors", {"features.0.weight": (8, 3, 3, 3)}), *STYLIZE(t)]),
    Case("stylize/weights-for-the-random-network", "no weights",
         lambda t, r: ["stylize", "skimage:chelsea", "skimage:gravel", "--weights", _write(t / "w.pth", b"x"), *STYLIZE(t)]),
    Case("stylize/unknown-layer", "no layer",
         lambda t, r: ["run", "stylize", "style=skimage:gravel", "style_layers=[relu1_1]", "--out", t / "run"]),
    Case("stylize/output-in-missing-folder", "cannot write",
         lambda t, r: ["stylize", "skimage:chelsea", "skimage:gravel", "-o", t / "no" / "out.png", "--run-dir", t / "run"]),
    Case("stylize/steps-zero", "steps", lambda t, r: ["stylize", "skimage:chelsea", "skimage:gravel", *STYLIZE(t), "--steps", "0"]),
    Case("stylize/blend-count-differs", "style_blend",
         lambda t, r: ["run", "stylize", "style=[skimage:brick, skimage:gravel]", "style_blend=[1]", "--out", t / "run"]),
    Case("stylize/unknown-optimizer", "optimizer",
         lambda t, r: ["stylize", "skimage:chelsea", "skimage:gravel", "--optimizer", "sgd", *STYLIZE(t)]),
    # --- attack (adversarial examples)
    Case("attack/eps-negative", "eps", lambda t, r: ["attack", "fmnist", "--eps", "-0.1", "--out", t / "run"]),
    Case("attack/eps-zero", "eps", lambda t, r: ["attack", "fmnist", "--eps", "0", "--out", t / "run"]),
    Case("attack/no-classifier-run", "not a genzoo run folder", lambda t, r: ["attack", t / "runs" / "classifier"]),
    Case("attack/run-that-cannot-classify", "does not classify", lambda t, r: ["attack", r("vae"), "--out", t / "run"]),
    Case("attack/unknown-method", "method", lambda t, r: ["attack", "fmnist", "--method", "deepfool", "--out", t / "run"]),
    Case("attack/unknown-norm", "norm", lambda t, r: ["attack", "fmnist", "--norm", "l1", "--out", t / "run"]),
    Case("attack/unknown-target-class", "Unicorn",
         lambda t, r: ["attack", "fmnist", "--targeted", "Unicorn", "-n", "8", "--out", t / "run"]),
    Case("attack/curve-not-numbers", "--curve", lambda t, r: ["attack", "fmnist", "--curve", "0,small", "--out", t / "run"]),
    Case("attack/out-holds-a-run", "already holds a run", lambda t, r: ["attack", "fmnist", "--out", r("vae")]),
    Case("eval/accuracy-of-a-generator", "classifies", lambda t, r: ["eval", r("vae"), "--metrics", "accuracy", "-n", "8"]),
    Case("eval/a-distance-without-features", "encode", lambda t, r: ["eval", r("gan"), "--metrics", "a-distance", "-n", "8"]),
    Case("eval/a-distance-without-a-target", "data.target", lambda t, r: ["eval", r("vae"), "--metrics", "a-distance", "-n", "8"]),
    Case("run/unknown-procedure", "unknown procedure", lambda t, r: ["run", "deepdream", "--out", t / "run"]),
    # --- translation: data the families cannot use, data.task and data.classes
    Case("data/pix2pix-on-unpaired-domains", "unpaired",
         lambda t, r: ["train", *TRANSLATION["pix2pix"], "data.domains=[0, 1]", "--out", t / "new"]),
    Case("data/pix2pix-on-single-images", "['a', 'b']", lambda t, r: ["train", *TRANSLATION["pix2pix"], "--out", t / "new"]),
    Case("data/cyclegan-with-one-domain", "data.domains",
         lambda t, r: ["train", *TRANSLATION["cyclegan"], "data.domains=[0]", "--out", t / "new"]),
    Case("data/cyclegan-domain-not-a-class", "not a class",
         lambda t, r: ["train", *TRANSLATION["cyclegan"], "data.domains=[0, Zebra]", "--out", t / "new"]),
    Case("data/stargan-without-labels", "label",
         lambda t, r: ["train", "stargan", *FOLDER[3:], "data.classes=null", f"data.root={files(t / 'flat', GOOD)}", "--out", t / "new"]),
    Case("data/stargan-on-two-domains", "['image', 'label']",
         lambda t, r: ["train", *TRANSLATION["stargan"], "data.domains=[0, 1]", "--out", t / "new"]),
    Case("data/classes-not-a-class", "not a class", lambda t, r: ["train", *VAE, "data.classes=[0, Boots]", "--out", t / "new"]),
    Case("data/classes-only-one", "at least two", lambda t, r: ["train", *VAE, "data.classes=[1]", "--out", t / "new"]),
    Case("data/task-grey-on-grey-images", "colour", lambda t, r: ["train", *TRANSLATION["pix2pix"], "data.task=grey", "--out", t / "new"]),
    Case("data/task-unknown", "data.task", lambda t, r: ["train", *TRANSLATION["pix2pix"], "data.task=sketch"]),
    Case("data/task-with-domains", "does not go with",
         lambda t, r: ["train", *TRANSLATION["pix2pix"], "data.task=denoise", "data.domains=[0, 1]", "--out", t / "new"]),
    Case("data/task-on-text", "data.task means nothing",
         lambda t, r: ["train", *TEXT, f"data.root={_write(t / 'a.txt', b'x' * 500)}", "data.task=denoise"]),
    # --- translate
    Case("translate/not-a-translation-model", "does not translate",
         lambda t, r: ["translate", r("vae"), files(t / "in", GOOD), "-o", t / "out"]),
    Case("translate/domain-that-does-not-exist", "not a domain",
         lambda t, r: ["translate", r("cyclegan"), files(t / "in", GOOD), "--to", "c", "-o", t / "out"]),
    Case("translate/class-that-does-not-exist", "not a domain",
         lambda t, r: ["translate", r("stargan"), files(t / "in", GOOD), "--to", "Unicorn", "-o", t / "out"]),
    Case("translate/stargan-without-a-domain", "--to", lambda t, r: ["translate", r("stargan"), files(t / "in", GOOD), "-o", t / "out"]),
    Case("translate/one-way-model-backwards", "only",
         lambda t, r: ["translate", r("pix2pix"), files(t / "in", GOOD), "--to", "a", "-o", t / "out"]),
    Case("translate/missing-input", "does not exist", lambda t, r: ["translate", r("cyclegan"), t / "missing", "-o", t / "out"]),
    Case("translate/broken-image", "cut.png",
         lambda t, r: ["translate", r("cyclegan"), files(t / "in", {**GOOD, "cut.png": "truncated-png"}), "-o", _mkdir(t / "out")]),
    Case("translate/out-is-a-file", "is a file",
         lambda t, r: ["translate", r("cyclegan"), files(t / "in", GOOD), "-o", _write(t / "out", b"x")]),
    Case("translate/grid-under-a-file", "is a file",
         lambda t, r: ["translate", r("cyclegan"), files(t / "in", GOOD), "-o", t / "out", "--grid",
                       _write(t / "no", b"x") / "g.png"]),
    Case("translate/two-inputs-one-output-name", "would both be written",
         lambda t, r: ["translate", r("cyclegan"), files(t / "in", {"x.png": "grey", "x.jpg": "jpeg"}), "-o", t / "out"]),
    Case("translate/not-a-run", "not a genzoo run folder",
         lambda t, r: ["translate", files(t / "photos", GOOD), files(t / "in", GOOD), "-o", t / "out"]),
    Case("eval/paired-metric-on-unpaired-domains", "paired data",
         lambda t, r: ["eval", r("cyclegan"), "--metrics", "paired", "-n", "8"]),
    Case("eval/cycle-of-a-one-way-model", "both ways", lambda t, r: ["eval", r("pix2pix"), "--metrics", "cycle", "-n", "8"]),
    Case("eval/domain-accuracy-of-unnamed-domains", "classes of the fmnist",
         lambda t, r: ["eval", r("cyclegan"), "--metrics", "domain-accuracy", "-n", "8"]),
    # --- growing GANs and StyleGAN's w
    Case("train/resolution-not-a-power-of-two", "power of two",
         lambda t, r: ["train", "progan", *FAKE, "data.image_size=24", "data.pad_to=null", "model.width=4", "model.latent_dim=8", "--out", t / "new"]),
    Case("train/fashion-mnist-28-without-padding", "data.pad_to=32",
         lambda t, r: ["train", "stylegan", *FAKE, "data.image_size=28", "data.pad_to=null", "model.width=4", "--out", t / "new"]),
    Case("data/pad-to-smaller-than-the-images", "data.pad_to=8",
         lambda t, r: ["train", *VAE, "data.pad_to=8", "--out", t / "new"]),
    Case("sample/negative-psi", "psi must be 0 or more", lambda t, r: ["sample", r("stylegan"), "--psi", "-0.5"]),
    Case("sample/psi-on-a-gan", "--psi", lambda t, r: ["sample", r("gan"), "--psi", "0.7"]),
    Case("latent/mix-layer-beyond-the-network", "beyond this network's layers",
         lambda t, r: ["latent", "mix", r("stylegan"), "--layers", "0-99", "-o", t / "m.png"]),
    Case("latent/mix-layers-not-a-range", "--layers", lambda t, r: ["latent", "mix", r("stylegan"), "--layers", "coarse"]),
    Case("latent/mix-of-a-gan", "no style layers", lambda t, r: ["latent", "mix", r("gan"), "-o", t / "m.png"]),
    Case("latent/psi-sweep-negative", "psi must be 0 or more",
         lambda t, r: ["latent", "psi", r("stylegan"), "--values", "1,-1", "-o", t / "p.png"]),
    Case("latent/interpolate-in-w-of-a-gan", "no intermediate latent space w",
         lambda t, r: ["latent", "interpolate", r("gan"), "--space", "w", "-o", t / "i.png"]),
    Case("latent/unknown-space", "unknown latent space",
         lambda t, r: ["latent", "interpolate", r("stylegan"), "--space", "s", "-o", t / "i.png"]),
    # --- posed images (transforms.json) for NeRF, and the data the 3-D families need
    Case("rays/frame-names-a-missing-image", "'gone'", _posed_case(frames=[{"file_path": "a.png", "transform_matrix": EYE},
                                                                           {"file_path": "gone", "transform_matrix": EYE}])),
    Case("rays/matrix-of-three-rows", "4 x 4", _posed_case(frames=[{"file_path": "a.png", "transform_matrix": EYE[:3]}])),
    Case("rays/matrix-of-words", "4 x 4", _posed_case(frames=[{"file_path": "a.png", "transform_matrix": "identity"}])),
    Case("rays/matrix-with-nan", "finite", _posed_case(frames=[{"file_path": "a.png",
                                                                "transform_matrix": [[float("nan")] * 4] * 4}])),
    Case("rays/transforms-not-json", "not valid JSON", _posed_case(text='{"frames": [')),
    Case("rays/no-camera-angle", "camera_angle_x", _posed_case(frames=[{"file_path": "a.png", "transform_matrix": EYE}],
                                                               angle=None)),
    Case("rays/no-frames", "frames", _posed_case(frames=[])),
    Case("rays/frames-of-two-sizes", "one size", _posed_case(frames=[{"file_path": "a.png", "transform_matrix": EYE},
                                                                     {"file_path": "b.jpg", "transform_matrix": EYE}])),
    Case("rays/no-transforms-file", "transforms.json",
         lambda t, r: ["train", *POSED, f"data.root={files(t / 'scene', {'a.png': 'grey'})}", "--out", t / "new"]),
    Case("rays/no-root", "data.root", lambda t, r: ["train", *POSED, "--out", t / "new"]),
    Case("data/nerf-without-posed-views", "posed views", lambda t, r: ["train", *NERF, *FAKE, "--out", t / "new"]),
    Case("data/chairs-without-rendered-chairs", "data.name=chairs",
         lambda t, r: ["train", "chairs", *FAKE, "model.hidden=8", "model.width=4", "--out", t / "new"]),
    # --- render
    Case("render/orbit-of-zero-frames", "--orbit", lambda t, r: ["render", r("chairs"), "--orbit", "0", "-o", t / "o.gif"],
         process=True),
    Case("render/a-run-that-cannot-render", "does not render", lambda t, r: ["render", r("vae"), "-o", t / "o.gif"]),
    Case("render/output-neither-gif-nor-png", "neither a .gif", lambda t, r: ["render", r("chairs"), "-o", t / "o.mp4"]),
    Case("render/output-under-a-file", "is a file",
         lambda t, r: ["render", r("chairs"), "-o", _write(t / "no", b"x") / "o.gif"]),
    Case("render/chair-it-does-not-know", "chairs 0..1",
         lambda t, r: ["render", r("chairs"), "--chair", "99", "--orbit", "2", "-o", t / "o.gif"]),
    Case("render/size-of-a-chairs-model", "--size", lambda t, r: ["render", r("chairs"), "--size", "64", "-o", t / "o.gif"]),
    Case("render/not-a-run", "not a genzoo run folder", lambda t, r: ["render", t / "missing", "-o", t / "o.gif"]),
    # --- text to image: prompts, captions, the first stage
    Case("sample/prompt-with-unknown-words", "'purple', 'hexagon'",
         lambda t, r: ["sample", r("latent-diffusion"), "--prompt", "a purple hexagon", "-o", t / "g.png"]),
    Case("sample/prompt-too-long", "reads at most",
         lambda t, r: ["sample", r("gan-cls"), "--prompt", "a small red circle above a large blue square left of a",
                       "-o", t / "g.png"]),
    Case("sample/empty-prompts-file", "holds no prompts",
         lambda t, r: ["sample", r("latent-diffusion"), "--prompts", _write(t / "prompts.txt", b"\n   \n"), "-o", t / "g.png"]),
    Case("sample/prompts-file-missing", "does not exist",
         lambda t, r: ["sample", r("latent-diffusion"), "--prompts", t / "prompts.txt", "-o", t / "g.png"]),
    Case("sample/prompts-file-not-utf8", "not UTF-8",
         lambda t, r: ["sample", r("gan-cls"), "--prompts", _write(t / "prompts.txt", b"a red \xff circle\n"), "-o", t / "g.png"]),
    Case("sample/prompt-and-prompts-file", "not both",
         lambda t, r: ["sample", r("gan-cls"), "--prompt", "a small red circle", "--prompts", t / "p.txt"]),
    Case("sample/prompt-on-a-vae", "takes no prompts",
         lambda t, r: ["sample", r("vae"), "--prompt", "a small red circle", "-o", t / "g.png"]),
    Case("sample/labels-on-a-text-model", "prompts, not class labels",
         lambda t, r: ["sample", r("latent-diffusion"), "--labels", "3", "-o", t / "g.png"]),
    Case("train/first-stage-missing", "model.first_stage",
         lambda t, r: ["train", *LDM, f"model.first_stage={t / 'missing'}", "--out", t / "new"]),
    Case("train/first-stage-of-another-family", "not an autoencoder-kl",
         lambda t, r: ["train", *LDM, f"model.first_stage={r('vae')}", "--out", t / "new"]),
    Case("train/first-stage-of-other-images", "was trained on 3x16x16 images",
         lambda t, r: ["train", *LDM, f"model.first_stage={r('autoencoder-kl')}", "data.image_size=32", "--out", t / "new"]),
    Case("data/text-model-without-captions", "has none",
         lambda t, r: ["train", *GAN_CLS, "data.name=fake", "--out", t / "new"]),
    Case("data/shapes-in-grey", "coloured", lambda t, r: ["train", *GAN_CLS, "data.channels=1", "--out", t / "new"]),
    Case("config/first-stage-factor-not-a-power-of-two", "model.downsampling",
         lambda t, r: ["train", "autoencoder-kl", *SHAPES, "model.downsampling=3", "--out", t / "new"]),
    Case("eval/prompt-accuracy-without-captions", "captioned dataset",
         lambda t, r: ["eval", r("vae"), "--metrics", "prompt-accuracy", "-n", "4"]),
    # --- the command line itself
    Case("cli/unknown-command", "trian", lambda t, r: ["trian", "vae"]),
    Case("cli/unknown-option", "--epochs", lambda t, r: ["train", *VAE, "--epochs", "3"]),
    Case("cli/list-extra-argument", "unexpected extra argument", lambda t, r: ["list", "families"]),
    Case("cli/not-a-number", "--steps", lambda t, r: ["train", *VAE, "--steps", "many"]),
]


class _RunsCode:
    """Unpickled by plain `pickle`, this would run `touch PATH`; a safe loader refuses it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return os.system, (f"touch {self.marker}",)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _tensors(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    from safetensors.numpy import save_file

    save_file({name: np.zeros(shape, dtype=np.float32) for name, shape in shapes.items()}, str(path))
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _remove(run: Path, *patterns: str) -> Path:
    for pattern in patterns:
        for path in run.glob(pattern):
            path.unlink()
    return run


# ----------------------------------------------------------------------------- running a case

def genzoo(capsys, *args: str | Path) -> tuple[int, str, str]:  # noqa: ANN001
    """`genzoo ARGS` in this process (tests/test_cli.py's helper): (exit code, stdout, stderr), with the
    warnings a real process would print on stderr added to it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", hidden)  # Python hides these by default
        code, out, err = run_in_process(capsys, *args)
    shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught)
    return code, out, err + shown


def genzoo_process(cwd: Path, *args: str | Path) -> tuple[int, str, str]:
    """`python -m genzoo ARGS` as a real process; stderr decoded as the terminal would show it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "genzoo", *map(os.fsencode, args)], capture_output=True, cwd=cwd,
                          env=env, timeout=120)
    return done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")


def snapshot(folder: Path) -> dict[bytes, object]:
    """Every file and folder under `folder`: content hash and modification time (folders: just present)."""
    state = {}
    for path in sorted(folder.rglob("*")):
        key = os.fsencode(path.relative_to(folder))
        is_file = path.is_file()
        state[key] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) if is_file else "dir"
    return state


def _param(case: Case):  # noqa: ANN202
    marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_ends_in_one_sentence_exit_2_nothing_damaged(case: Case, built, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "case"
    folder.mkdir()
    monkeypatch.chdir(folder)  # default outputs (runs/, samples.png) would land here and be caught
    argv = case.argv(folder, Runs(built, folder))
    before = snapshot(folder)
    code, out, err = genzoo_process(folder, *argv) if case.process else genzoo(capsys, *argv)
    lines = err.strip().splitlines()
    assert "Traceback" not in out + err, err
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert case.phrase in lines[0], lines[0]
    assert snapshot(folder) == before, "a failed command changed files"


def test_the_corpus_covers_every_command_and_is_big_enough():
    groups = {c.id.split("/")[0] for c in CASES}
    assert {"config", "yaml", "images", "fmnist", "text", "paired", "target", "data", "train", "resume", "sample", "eval", "report", "demo",
            "latent", "cli", "stylize", "attack", "translate", "complete", "rays", "render", "simulate"} <= groups
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    assert sum(c.process for c in CASES) >= 2
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"A corpus of {len(CASES)} mistakes" in readme  # the README's count is this table's


# ----------------------------------------------------------------------------- odd but valid: must work

GOOD_FOLDER = {
    "a-grey.png": "grey", "b-rgb.png": "rgb", "c-rgba.png": "rgba", "d-grey-alpha.png": "grey-alpha",
    "e-palette.png": "palette", "f-cmyk.jpg": "cmyk-jpeg", "g-grey16.png": "grey16", "h-rgb48.png": "rgb48",
    "i-one-pixel.png": "one-pixel", f"j-{NON_UTF8}.jpg": "jpeg",
}


def test_odd_but_valid_images_load_with_the_right_pixels(tmp_path):
    from genzoo.config import DataConfig
    from genzoo.data import build_dataset

    root = files(tmp_path / "mixed", GOOD_FOLDER)
    data = build_dataset(DataConfig(name="image-folder", root=str(root), image_size=8))
    assert tuple(data.images.shape) == (len(GOOD_FOLDER), 3, 8, 8)  # mixed modes: all converted to RGB
    by_name = dict(zip(sorted(GOOD_FOLDER), data.images))  # the loader sorts paths; these names sort the same
    assert (by_name["g-grey16.png"] == 128).all()  # 16-bit 32896 scaled to 8 bits, not clipped to 255
    assert (by_name["h-rgb48.png"] == 128).all()
    assert by_name["i-one-pixel.png"].flatten(1).T.unique(dim=0).tolist() == [[10, 200, 30]]  # 1 x 1 upscaled
    assert by_name["c-rgba.png"][:, 0, 0].tolist() == [10, 30, 200]  # alpha dropped, colour kept
    assert by_name["e-palette.png"][:, 0, 0].tolist() == [200, 100, 50]
    alone = files(tmp_path / "g16", {"x.png": "grey16"})
    grey16_alone = build_dataset(DataConfig(name="image-folder", root=str(alone)))
    assert grey16_alone.images.shape[1] == 1 and (grey16_alone.images == 128).all()  # 16-bit grey stays grey


def test_odd_but_valid_folder_trains_end_to_end(tmp_path, capsys):
    root = files(tmp_path / "mixed", GOOD_FOLDER)
    code, out, err = genzoo(capsys, "train", *FOLDER, f"data.root={root}", "--out", tmp_path / "run")
    assert code == 0, err
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_a_non_utf8_run_folder_trains(tmp_path, capsys):
    code, out, err = genzoo(capsys, "train", *VAE, "--out", tmp_path / NON_UTF8)
    assert code == 0, err


def test_help_still_exits_0_and_no_arguments_show_the_help(capsys):
    for args in (["--help"], ["sample", "--help"], ["latent", "traverse", "--help"]):
        code, out, err = genzoo(capsys, *args)
        assert code == 0 and "Usage" in out and not err, args
    code, out, _ = genzoo(capsys, "latent")
    assert "interpolate" in out and "Traceback" not in out  # the group's help, as typer prints it

"""Crash and resume: a real `genzoo train` process is killed with SIGKILL at random moments, some of
them in the middle of a checkpoint write, then resumed, again and again. The run that survives the
kills ends with the same weights, EMA weights and optimizer state, bit for bit, as one run straight
through (CPU, deterministic mode, fp32), and its log has every step exactly once.

Each process spends ~5 s importing before it trains, so the default suite kills each family 3 times
(the GAN and the VAE run side by side); the `slow` test kills each family 12 times (also the translation
families, the PixelCNN, the character LSTM, a StyleGAN that grows through three resolutions during the run:
kills land before, during and after fade-ins; the chairs generator (rendered, cached data) and NeRF (random
samples along its rays in every step); the text-to-image families (latent-diffusion on a first stage, gan-cls,
autoencoder-kl with its patch discriminator).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from conftest import TINY_DATA, TINY_MODELS

from genzoo.config import load_config
from genzoo.train.checkpoint import RunFolder
from genzoo.api import make_trainer

# a GAN: two optimizers and EMA; a VAE: one optimizer. The slow test also kills the translation families
# (dropout noise: pix2pix; a history pool in buffers and a scheduled rate: cyclegan; random target domains and a
# gradient penalty: stargan), a PixelCNN with EMA and a character LSTM with dropout
# StyleGAN (its preset, at the tiny size): 4 x 4 until step 40, 8 x 8 fades in over 40-80, 16 x 16 over 120-160;
# lazy R1 every 4 steps, a mapping network at 0.01 x the rate, the tracked mean w, EMA
FAMILIES = {"gan": ["train.ema_decay=0.9"], "vae": [], "pix2pix": [], "cyclegan": ["train.ema_decay=0.9"], "stargan": [],
            "pixelcnn": ["train.ema_decay=0.9"], "char-lm": ["model.dropout=0.1"],
            "stylegan": ["train.ema_decay=0.9", "data.pad_to=null", "model.fade_steps=40", "model.stable_steps=40",
                         "model.r1_every=4"],
            "chairs": ["data.name=chairs", "train.ema_decay=0.9"],  # rendered data, a cache
            "nerf": ["data.name=chair-views", "data.max_images=8"],  # random samples along rays in every step
            "dann": [],  # a labelled source and an unlabelled target; the gradient-reversal and rate schedules
            "ddpm": ["data.name=calo", "model.conditional=true", "train.ema_decay=0.9"]}  # calo-ddpm: simulated showers
DEFAULT = ("gan", "vae")  # killed 3 times each in the default suite; every family 12 times in the slow test
IMAGES = ["data.name=fake", "data.image_size=16", "data.max_images=64"]
TRAIN = ["train.batch_size=8", "train.log_every=1", "train.sample_every=50", "train.checkpoint_every=3",
         "train.deterministic=true", "train.mixed_precision=no", "train.device=cpu", "train.seed=0"]
TEXT_FAMILIES = {  # slow harness only: caption banks and latent scales in buffers, a frozen first stage, two optimizers
    "latent-diffusion": ["train.ema_decay=0.9", "data.name=shapes"],
    "gan-cls": ["train.ema_decay=0.9", "data.name=shapes"],
    "autoencoder-kl": ["data.name=shapes"],
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def overrides(family: str, steps: int, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    model = [f"model.{key}={json.dumps(value)}" for key, value in TINY_MODELS[family].items()]
    data = [f"data.{key}={json.dumps(value)}" for key, value in TINY_DATA.get(family, {}).items()]  # after IMAGES: wins
    return [*model, *IMAGES, *TRAIN, *data, *{**FAMILIES, **TEXT_FAMILIES}[family], *extra, f"train.steps={steps}"]


def straight_run(family: str, steps: int, out: Path, extra: list[str] | tuple[str, ...] = ()) -> RunFolder:
    """The uninterrupted reference, in this process with the subprocesses' single thread."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    try:
        return make_trainer(load_config(family, overrides(family, steps, extra)), out, progress=False).fit()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


CHECKPOINT_TEMPORARIES = (".model.safetensors.tmp-", ".training_state.pt.tmp-")


def checkpoint_being_written(run: Path) -> bool:
    try:
        return any(name.startswith(CHECKPOINT_TEMPORARIES) for name in os.listdir(run))
    except FileNotFoundError:
        return False


def log_inode(run: Path) -> int | None:
    try:
        return os.stat(run / "log.jsonl").st_ino
    except FileNotFoundError:
        return None


def last_logged_step(run: Path) -> int:
    try:
        lines = (run / "log.jsonl").read_bytes().splitlines()
        return json.loads(lines[-1])["step"] if lines else 0
    except (FileNotFoundError, ValueError, KeyError):
        return 0  # not there yet, or a line being written


def kill_at_random(command: list[str], run: Path, rng: random.Random, log: Path) -> str:
    """Start `command`; once it has trained 1 to 20 steps (at random) past its checkpoint, SIGKILL it, or,
    half of the time, wait for the next checkpoint write to begin and kill it then. Returns "finished",
    "killed" or "killed mid-write" (a checkpoint was half written: its temporary files are left, or the
    latest checkpoint is not intact)."""
    start = RunFolder(run).load_checkpoint(note=None).metadata["step"] if RunFolder(run).has_checkpoint() else 0
    old_log = log_inode(run)  # a resume first rewrites the log without the lines after its checkpoint
    with open(log, "ab") as output:
        process = subprocess.Popen(command, env=ENV, stdout=output, stderr=output)
    try:
        kill_after, aim_at_write = start + rng.randint(1, 20), rng.random() < 0.5
        while process.poll() is None and not (log_inode(run) != old_log and last_logged_step(run) >= kill_after):
            time.sleep(0.001)  # importing, building, resuming, training
        while aim_at_write and process.poll() is None and not checkpoint_being_written(run):
            time.sleep(0.0002)
        process.send_signal(signal.SIGKILL)
        code = process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if code == 0:
        return "finished"
    assert code == -signal.SIGKILL, f"genzoo exited with {code}:\n{log.read_text()[-3000:]}"
    notes: list[str] = []
    if RunFolder(run).has_checkpoint():  # what a kill leaves is always an intact checkpoint
        RunFolder(run).load_checkpoint(note=notes.append)
    return "killed mid-write" if checkpoint_being_written(run) or notes else "killed"


def crash_and_resume(family: str, steps: int, kills: int, seed: int, folder: Path,
                     extra: list[str] | tuple[str, ...] = ()) -> dict[str, int]:
    """Kill a run `kills` times, resume it to the end; return the counts of what happened.
    (Subprocesses only, so two of these can run side by side in threads.)"""
    rng, run, log = random.Random(seed), folder / f"{family}-killed", folder / f"{family}.log"
    train = [sys.executable, "-m", "genzoo", "train", family, *overrides(family, steps, extra), "--out", str(run), "--no-progress"]
    resume = [sys.executable, "-m", "genzoo", "resume", str(run), "--no-progress"]
    counts = {"killed": 0, "killed mid-write": 0, "finished": 0}
    while counts["killed"] + counts["killed mid-write"] < kills:
        command = resume if (run / "config.json").exists() else train
        outcome = kill_at_random(command, run, rng, log)
        counts[outcome] += 1
        if outcome == "finished":
            break
    assert counts["finished"] == 0, f"the run finished before {kills} kills; give it more steps"
    finish = subprocess.run(resume, env=ENV, capture_output=True, text=True)
    assert finish.returncode == 0, finish.stderr[-3000:]
    return counts


def assert_equals_a_straight_run(family: str, steps: int, folder: Path, extra: list[str] | tuple[str, ...] = ()) -> None:
    """Compare the killed run in `folder` with a straight one (in this process: never in two threads at once,
    since they would share torch's global random state)."""
    expected, got = straight_run(family, steps, folder / f"{family}-straight", extra), RunFolder(folder / f"{family}-killed")
    expected_tensors, _ = expected.read_weights(expected.weights)
    got_tensors, metadata = got.read_weights(got.weights)
    assert metadata["step"] == steps and expected_tensors.keys() == got_tensors.keys()
    assert any(key.startswith("ema.") for key in got_tensors) == ("train.ema_decay=0.9" in {**FAMILIES, **TEXT_FAMILIES}[family])
    for key in expected_tensors:
        assert torch.equal(expected_tensors[key], got_tensors[key]), key
    state_a, state_b = (torch.load(f.state, weights_only=True) for f in (expected, got))
    assert (state_a["step"], state_a["data_position"]) == (state_b["step"], state_b["data_position"])
    for name, optimizer in state_a["optimizers"].items():
        for index, moments in optimizer["state"].items():
            for key, value in moments.items():
                assert torch.equal(value, state_b["optimizers"][name]["state"][index][key]), (name, index, key)
    assert [json.loads(line)["step"] for line in got.log.read_text().splitlines()] == list(range(1, steps + 1))
    assert not [p.name for p in got.path.iterdir() if ".tmp-" in p.name]


def test_killed_and_resumed_runs_equal_a_straight_run(tmp_path):
    with ThreadPoolExecutor(len(DEFAULT)) as pool:  # the two families side by side: half the wall time
        futures = {family: pool.submit(crash_and_resume, family, 80, 3, seed, tmp_path)
                   for seed, family in enumerate(DEFAULT)}
        counts = {family: future.result() for family, future in futures.items()}
    print(counts)
    for family, count in counts.items():
        assert count["killed"] + count["killed mid-write"] == 3, (family, count)
        assert_equals_a_straight_run(family, 80, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("family", [*FAMILIES, *TEXT_FAMILIES])
def test_twelve_kills(family, tmp_path, request):
    extra = [f"model.first_stage={request.getfixturevalue('tiny_first_stage')}"] if family == "latent-diffusion" else []
    counts = crash_and_resume(family, 300, 12, seed=100 + len(family), folder=tmp_path, extra=extra)
    print(family, counts)
    assert counts["killed"] + counts["killed mid-write"] == 12
    assert_equals_a_straight_run(family, 300, tmp_path, extra)
    assert counts["killed mid-write"] >= 3  # some kills did land inside checkpoint writes

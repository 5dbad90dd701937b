"""Quark and gluon jet images from a real Monte-Carlo generator (Pythia 8 + FastJet), the `jets` datasets.

An optional extra: Pythia 8 (`pythia8mc`) and FastJet (`fastjet`) are GPL-2.0-or-later, so genzoo never
depends on them; they are imported inside the functions that need them (`pip install genzoo[physics]`).

Events (the hard processes of the public quark/gluon samples of Komiske, Metodiev & Thaler, "Energy Flow
Networks", JHEP 01 (2019) 121, at a lower jet pT): proton-proton collisions at sqrt(s) = 13 TeV, a Z
boson recoiling against one hard parton, the Z forced to decay to neutrinos (`23:onMode = off`,
`23:onIfAny = 12 14 16`, pure Z: `WeakZ0:gmZmode = 2`), so that the only hard visible object is the jet:
- quark jets (label 0): `WeakBosonAndParton:qg2gmZq` (q g -> Z q);
- gluon jets (label 1): `WeakBosonAndParton:qqbar2gmZg` (q qbar -> Z g).
The label is the flavour of the hard process's outgoing parton, as in those samples (not a per-jet
match: a leading jet from initial-state radiation keeps its event's label; the label noise is part of
the task). Z + jet rather than dijets (`HardQCD`): one parton per event, of a known flavour, and no
second jet to choose. Parton showers, multi-parton interactions, hadronisation and hadron decays are
Pythia's defaults for the tune; the phase space is pT-hat in [`PT_HAT`] GeV, a window wider than the
jet selection, so that the selected jets are not cut by it.

Jets: the visible final-state particles (no neutrinos) with |eta| < 5 clustered with anti-kT
(Cacciari, Salam & Soyez, JHEP 04 (2008) 063), R = 0.4, E-scheme; the leading jet is kept when its
pT is in [100, 150] GeV and |eta| < 2 (else the event is skipped: classes stay balanced by generating
jets of each class until there are enough).

Images (jet images: Cogan et al., JHEP 02 (2015) 118; de Oliveira et al., "Jet-images -- deep learning
edition", JHEP 07 (2016) 069, whose 25 x 25 grid this keeps, with pixels scaled to R = 0.4 jets rather
than their 0.1 for R = 1.0; Komiske, Metodiev & Schwartz, "Deep
learning in color", JHEP 01 (2017) 110, for quark vs gluon): the jet's constituents binned in a
25 x 25 grid of (Delta eta, Delta phi) around the jet axis, covering [-0.4, 0.4] in each (2R: a
constituent of an R = 0.4 jet lies within it but in rare corners of irregular jets), pixels 0.032
wide; a pixel holds the scalar sum of its constituents' pT in GeV. Row = Delta eta, column =
Delta phi (phi wrapped to [-pi, pi)), both increasing; the axis is the centre of the middle pixel
(12, 12). Preprocessing is centring only: no rotation or flip, and no normalisation (the total pT
is an observable; normalise yourself if you want the shapes only). One channel.
Pixels are stored as uint8 on a logarithmic scale, p = round(255 log(1 + pT / 10 MeV) / log(1 + 200
GeV / 10 MeV)) (steps of 4% of pT; 200 GeV saturates), i.e. [-1, 1] in batches; `encode` and
`decode` convert. data.channels=3 repeats the grid in three channels (as grey images become RGB; the
`dann` preset asks for it); data.image_size must stay unset: the grid is physics, not pixels to
resize (data.pad_to=28 or 32 pads it with empty pixels for networks that need sizes b * 2^k).

Two conditions, a known "simulation -> data" shift (as the calorimeter of genzoo/data/calo.py has):
- "simulation" (`SIMULATION`): `Tune:pp = 14`, the Monash 2013 tune; particles as generated;
- "data" (`DATA`): `Tune:pp = 25`, the ATLAS A14 variation 2+ (alpha_s 0.139 in the final-state
  shower against Monash's 0.1365, 0.127 in the initial-state shower against 0.1365, multi-parton
  interactions' pT0 2.09 GeV against 2.28), and a crude detector response on every visible particle
  before clustering: its four-momentum times 0.95 (1 + 0.10 N(0, 1)) (a 5% low energy scale, 10%
  resolution per particle), particles then under 0.5 GeV of pT lost.
Both tunes describe LHC data, so the tune alone moves jets by a few percent (measured, 300 jets of
each: gluon jets' constituents 30.3 +- 0.5 against 28.7 +- 0.5, quark jets' 21.0 +- 0.4 against 20.8
+- 0.4); most of the shift is the response (gluon jets' constituents 24.8 under "data", 150 jets).
Deterministic: Pythia is seeded (`Random:setSeed = on`, `Random:seed`), one generator per class,
and the smearing draws from numpy seeded alike.

Datasets (`data.name=...`; split train = seed 0, test = seed 1, all = seed 2; "data" seeds + 100):
`jets` (simulation) and `jets-data` (data), quark (0) or gluon (1), balanced; data.max_images jets
(default 4,000 for train, 2,000 otherwise: 16-17 jets per second per process on a shared 2-core
machine, about 4 minutes for 4,000; `benchmarks/jets.py`), cached as .npz under the data cache, keyed
by the settings, the seed, `VERSION` and the versions of Pythia and FastJet.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version

import numpy as np
import torch
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.base import ImageData
from genzoo.errors import DataError
from genzoo.io import cache_root, cached_arrays, is_main_process
from genzoo.registry import DATASETS

VERSION = 1  # of the generation settings and images: part of the cache key
CLASS_NAMES = ("quark", "gluon")
PROCESSES = ("WeakBosonAndParton:qg2gmZq", "WeakBosonAndParton:qqbar2gmZg")  # quark (0), gluon (1) jets
ENERGY = 13_000.0  # GeV, sqrt(s)
PT_HAT = (90.0, 180.0)  # GeV, the hard process's phase space
PT_WINDOW = (100.0, 150.0)  # GeV, of the leading jet
ETA_MAX = 2.0  # of the leading jet
PARTICLE_ETA_MAX = 5.0  # of the particles clustered
RADIUS = 0.4  # anti-kT R
PIXELS = 25  # per side of the image
HALF_WIDTH = 0.4  # the image covers [-HALF_WIDTH, HALF_WIDTH] in Delta eta and Delta phi
PT_UNIT, PT_SATURATION = 0.01, 200.0  # GeV: the pixel scale, log(1 + pT / PT_UNIT)
EXTRA = "pip install genzoo[physics]"


@dataclass(frozen=True)
class Conditions:
    tune: int = 14  # Tune:pp
    response: float = 1.0  # every visible particle's four-momentum times this ...
    resolution: float = 0.0  # ... times (1 + resolution N(0, 1))
    threshold: float = 0.0  # GeV: particles with less pT after that are lost


SIMULATION = Conditions()
DATA = Conditions(tune=25, response=0.95, resolution=0.10, threshold=0.5)


def _physics_extra():  # noqa: ANN202
    """(pythia8mc, fastjet), or a DataError that says how to install them."""
    try:
        import fastjet
        import pythia8mc
    except ImportError as error:
        raise DataError(f"the jets datasets need the physics extra (Pythia 8 and FastJet, {error.name} is missing); "
                        f"run `{EXTRA}`.") from None
    return pythia8mc, fastjet


# ----------------------------------------------------------------------------- images


def jet_image(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, axis_eta: float, axis_phi: float) -> np.ndarray:
    """Constituents (pT (M,) GeV, eta (M,), phi (M,)) -> the (PIXELS, PIXELS) pT grid around the axis, float64:
    rows Delta eta, columns Delta phi (wrapped to [-pi, pi)); constituents outside [-0.4, 0.4]^2 are left out."""
    d_eta = np.asarray(eta, dtype=np.float64) - axis_eta
    d_phi = (np.asarray(phi, dtype=np.float64) - axis_phi + math.pi) % (2 * math.pi) - math.pi
    pitch = 2 * HALF_WIDTH / PIXELS
    row = np.floor((d_eta + HALF_WIDTH) / pitch).astype(np.int64)
    column = np.floor((d_phi + HALF_WIDTH) / pitch).astype(np.int64)
    inside = (row >= 0) & (row < PIXELS) & (column >= 0) & (column < PIXELS)
    flat = np.bincount(row[inside] * PIXELS + column[inside], weights=np.asarray(pt, dtype=np.float64)[inside],
                       minlength=PIXELS * PIXELS)
    return flat.reshape(PIXELS, PIXELS)


def pixel_centres() -> np.ndarray:
    """The (Delta eta or Delta phi) of the pixel centres along a side, (PIXELS,); the middle one is 0."""
    pitch = 2 * HALF_WIDTH / PIXELS
    return -HALF_WIDTH + pitch * (np.arange(PIXELS) + 0.5)


LOG_SCALE = math.log1p(PT_SATURATION / PT_UNIT)


def encode(pt: np.ndarray | Tensor) -> Tensor:
    """Pixel pT (GeV, any shape) -> uint8 pixels on the logarithmic scale."""
    pt = torch.as_tensor(pt, dtype=torch.float64)
    return (255.0 * torch.log1p(pt.clamp(min=0) / PT_UNIT) / LOG_SCALE).round().clamp(0, 255).to(torch.uint8)


def decode(images: Tensor) -> Tensor:
    """Images in [-1, 1] (..., H, W) -> pixel pT in GeV (float64); several channels are averaged (..., H, W)."""
    if images.dim() == 4:
        images = images.mean(1)  # (N, H, W): data.channels=3 repeats one grid
    fraction = (images.double().clamp(-1, 1) + 1.0) / 2.0  # pixels / 255
    return PT_UNIT * torch.expm1(fraction * LOG_SCALE)


def observables(pt: Tensor | np.ndarray) -> dict[str, Tensor]:
    """Per jet, of pixel grids (N, H, W) in GeV: the total pT, the number of non-empty pixels, the girth
    (pT-weighted mean distance of the pixel centres from the axis, sum pT_i dR_i / sum pT_i), and the
    pT-weighted centroid (Delta eta, Delta phi). A padded grid (data.pad_to) has its axis where the padding put
    it: pixel (size - 25) // 2 + 12."""
    pt = torch.as_tensor(pt, dtype=torch.float64)  # (N, H, W)
    size = pt.shape[-1]
    pitch = 2 * HALF_WIDTH / PIXELS
    axis = (size - PIXELS) // 2 + PIXELS // 2  # as genzoo.data.base.pad_to centres the grid
    centres = (torch.arange(size, dtype=torch.float64) - axis) * pitch  # (H,) 0 at the axis
    d_eta, d_phi = centres.view(-1, 1), centres.view(1, -1)
    total = pt.sum((1, 2))  # (N,)
    weight = pt / total.clamp(min=1e-12).view(-1, 1, 1)
    return {"pt": total, "pixels": (pt > 0).sum((1, 2)).double(),
            "girth": (weight * (d_eta**2 + d_phi**2).sqrt()).sum((1, 2)),
            "centroid_eta": (weight * d_eta).sum((1, 2)), "centroid_phi": (weight * d_phi).sum((1, 2))}


# ----------------------------------------------------------------------------- generation


def pythia(label: int, seed: int, conditions: Conditions = SIMULATION):  # noqa: ANN201
    """A quiet, seeded Pythia 8 making the events of class `label` (0 quark, 1 gluon) under `conditions`."""
    pythia8mc, _ = _physics_extra()
    generator = pythia8mc.Pythia("", False)  # no banner
    settings = [f"Tune:pp = {conditions.tune}", f"Beams:eCM = {ENERGY}", f"{PROCESSES[label]} = on",
                "WeakZ0:gmZmode = 2", "23:onMode = off", "23:onIfAny = 12 14 16",
                f"PhaseSpace:pTHatMin = {PT_HAT[0]}", f"PhaseSpace:pTHatMax = {PT_HAT[1]}",
                "Random:setSeed = on", f"Random:seed = {seed}", "Print:quiet = on", "Next:numberCount = 0"]
    for setting in settings:  # the tune first: it resets what it covers
        if not generator.readString(setting):
            raise DataError(f"Pythia refused the setting {setting!r}; install the pythia8mc version of the physics "
                            f"extra (`{EXTRA}`).")
    if not generator.init():
        raise DataError(f"Pythia could not be initialised for {PROCESSES[label]}; reinstall the physics extra "
                        f"(`{EXTRA}`).")
    return generator


def visible_particles(event) -> np.ndarray:  # noqa: ANN001
    """(px, py, pz, E) (M, 4) GeV of an event's visible final-state particles with |eta| < 5."""
    rows = [(p.px(), p.py(), p.pz(), p.e()) for p in event if p.isFinal() and p.isVisible()
            and abs(p.eta()) < PARTICLE_ETA_MAX]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def detector_response(momenta: np.ndarray, conditions: Conditions, rng: np.random.Generator) -> np.ndarray:
    """Four-momenta (M, 4) times response (1 + resolution N(0, 1)) each (kept >= 0); then those under the pT
    threshold are dropped."""
    if conditions.response == 1.0 and conditions.resolution == 0.0 and conditions.threshold == 0.0:
        return momenta
    factor = conditions.response * (1.0 + conditions.resolution * rng.standard_normal(len(momenta)))  # (M,)
    momenta = momenta * np.maximum(factor, 0.0)[:, None]
    return momenta[np.hypot(momenta[:, 0], momenta[:, 1]) >= max(conditions.threshold, 1e-9)]


def leading_jet(momenta: np.ndarray):  # noqa: ANN201
    """The leading anti-kT R = 0.4 jet of particles (M, 4), as (pt, eta, phi, mass, constituent indices (K,)),
    or None when there is no jet of at least 10 GeV."""
    _, fastjet = _physics_extra()
    swig = fastjet._swig
    swig.ClusterSequence.set_fastjet_banner_stream(None)  # FastJet's banner, printed once, would break CLI output
    particles = []
    for i, (px, py, pz, e) in enumerate(momenta):
        particle = swig.PseudoJet(px, py, pz, e)
        particle.set_user_index(i)
        particles.append(particle)
    sequence = swig.ClusterSequence(particles, swig.JetDefinition(swig.antikt_algorithm, RADIUS))
    jets = swig.sorted_by_pt(sequence.inclusive_jets(10.0))
    if not jets:
        return None
    jet = jets[0]
    indices = np.array([c.user_index() for c in jet.constituents()], dtype=np.int64)
    return jet.pt(), jet.eta(), jet.phi_std(), jet.m(), indices


def kinematics(momenta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pT, eta, phi) of four-momenta (M, 4)."""
    px, py, pz = momenta[:, 0], momenta[:, 1], momenta[:, 2]
    pt = np.hypot(px, py)
    return pt, np.arcsinh(pz / np.maximum(pt, 1e-12)), np.arctan2(py, px)


def generate(label: int, n: int, seed: int, conditions: Conditions = SIMULATION,
             progress: Callable[[int], object] | None = None) -> dict[str, np.ndarray]:
    """n jets of class `label` (0 quark, 1 gluon): "image" (n, 25, 25) float32 pT in GeV, and per jet "pt",
    "eta", "mass" (GeV), "constituents" (their number), "events" (events generated for these jets).
    Deterministic for a seed (1 <= seed <= 900,000,000); `progress(1)` is called after each jet."""
    generator = pythia(label, seed, conditions)
    rng = np.random.default_rng([seed, 11])
    images, records, events = np.zeros((n, PIXELS, PIXELS), dtype=np.float32), [], 0
    while len(records) < n:
        events += 1
        if not generator.next():
            continue
        momenta = detector_response(visible_particles(generator.event), conditions, rng)
        jet = leading_jet(momenta) if len(momenta) else None
        if jet is None:
            continue
        pt, eta, phi, mass, indices = jet
        if not (PT_WINDOW[0] <= pt < PT_WINDOW[1] and abs(eta) < ETA_MAX):
            continue
        images[len(records)] = jet_image(*kinematics(momenta[indices]), eta, phi)
        records.append((pt, eta, mass, len(indices)))
        if progress is not None:
            progress(1)
    pt, eta, mass, constituents = np.array(records, dtype=np.float64).reshape(-1, 4).T  # (n,) each
    return {"image": images, "pt": pt, "eta": eta, "mass": mass, "constituents": constituents.astype(np.int64),
            "events": np.array(events)}


# ----------------------------------------------------------------------------- datasets


class JetImages(ImageData):
    """Jet images (N, 1, 25, 25) on the pixel scale of this module; labels quark (0) or gluon (1)."""


SPLIT_SEEDS = {"train": 0, "test": 1, "all": 2}


def _jets(config: DataConfig, name: str, conditions: Conditions) -> JetImages:
    if config.image_size not in (None, PIXELS):
        raise DataError(f"dataset {name!r} holds {PIXELS} x {PIXELS} jet images (pT in eta-phi cells), which cannot "
                        "be resized; leave data.image_size unset (data.pad_to=28 or 32 pads them with empty pixels).")
    n = config.max_images or (4_000 if config.split == "train" else 2_000)
    if n < 2:
        raise DataError(f"dataset {name!r} needs data.max_images of at least 2 (a quark and a gluon jet); give a "
                        "larger data.max_images.")
    seed = SPLIT_SEEDS[config.split] + (100 if conditions is DATA else 0)
    _physics_extra()

    def make() -> dict[str, np.ndarray]:
        from rich.progress import Progress

        labels = np.random.default_rng([seed, 7]).permutation(n) % 2  # (N,) balanced
        pixels = np.zeros((n, 1, PIXELS, PIXELS), dtype=np.uint8)
        with Progress(transient=True, disable=n < 200 or not is_main_process()) as bar:
            task = bar.add_task(f"generating {n:,} jets with Pythia 8", total=n)
            for label in (0, 1):
                jets = generate(label, int((labels == label).sum()), seed=1 + 1000 * seed + label, conditions=conditions,
                                progress=lambda k: bar.advance(task, k))
                pixels[labels == label, 0] = encode(jets["image"]).numpy()
        return {"pixels": pixels, "labels": labels.astype(np.int64)}

    settings = {"version": VERSION, "pythia": version("pythia8mc"), "fastjet": version("fastjet"), "name": name, "n": n,
                "seed": seed, "conditions": asdict(conditions)}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:24]
    arrays = cached_arrays(cache_root() / "data" / f"jets-{key}.npz", make)
    condition = "data" if conditions is DATA else "simulation"
    return JetImages(torch.from_numpy(arrays["pixels"]), torch.from_numpy(arrays["labels"]), num_classes=2,
                     class_names=list(CLASS_NAMES), split=config.split,
                     source=f"{name}: {n} Pythia 8 quark and gluon jets (Z + jet, 13 TeV, anti-kT 0.4, pT 100-150 GeV; "
                            f"{condition}, Tune:pp = {conditions.tune}; split {config.split})")


@DATASETS.register("jets")
def jets(config: DataConfig) -> JetImages:
    """Pythia 8 jet images, quark (0) or gluon (1), 'simulation' (Tune:pp = 14); needs the physics extra."""
    return _jets(config, "jets", SIMULATION)


@DATASETS.register("jets-data")
def jets_data(config: DataConfig) -> JetImages:
    """Pythia 8 jet images as `jets`, as 'data' (Tune:pp = 25, smeared particles): the adaptation target."""
    return _jets(config, "jets-data", DATA)


__all__ = ["DATA", "SIMULATION", "Conditions", "JetImages", "decode", "encode", "generate", "jet_image", "observables"]

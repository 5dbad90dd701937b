"""A toy calorimeter: a seeded, parametric shower simulator, and the `calo` datasets made with it.

What it is: a small, documented, deterministic *stand-in* for a full (Geant4) simulation, so that
fast simulators and domain adaptation can be trained and judged on showers whose physics is known.
What it is not: a detector simulation. Its formulas are the textbook parametrisations, with
round-number constants for a lead/liquid-argon-like sampling calorimeter; its showers are not
validated against test-beam data, and figures measured on it say nothing about a real detector.

Geometry (CaloGAN's idea: a few longitudinal layers of transverse cell grids; Paganini et al.,
PRL 120, 042003, 2018): 3 layers with boundaries `Detector.layers` = (0, 3, 19, 25) radiation
lengths X0 (a thin first layer, a thick middle, a back layer), each a 16 x 16 grid of cells of
0.5 Moliere radii R_M; the particle enters perpendicular to the layers at the centre, shifted by up
to half a cell. A shower is an image (3, 16, 16): one channel per layer.

A shower is a cloud of energy *spots* (the GFlash idea; Grindhammer & Peters, hep-ex/0001020),
10 per GeV of the energy they carry, each spot placed at a depth t and a radius r:
- Electromagnetic (e-, gamma; PDG Review "Passage of particles through matter", Eq. 34.36, after
  Longo & Sestili 1975): dE/dt = E b (bt)^(a-1) e^(-bt) / Gamma(a), so the depth of a spot is
  Gamma(a, 1/b) distributed, with b = 0.5 and t_max = (a - 1)/b = ln(E/E_c) + C, E_c = 7.4 MeV,
  C = -0.5 for electrons, +0.5 for photons; the mean depth is a/b. Shower-to-shower fluctuations:
  a and b are scaled by exp(0.1 N(0, 1)) each, independently, per shower.
- Lateral, core plus tail (the GFlash form): f(r) = p f_C(r) + (1 - p) f_T(r) with
  f_i(r) = 2 r R_i^2 / (r^2 + R_i^2)^2 (CDF r^2/(r^2 + R_i^2): r = R_i sqrt(u/(1 - u))), core radius
  R_C = 0.15 + 0.15 tau, tail R_T = 0.6 + 0.6 tau (R_M, tau = t / t_max), p = 0.85 - 0.15 min(tau, 2)
  / 2; azimuth uniform.
- Hadronic (pi+): the first interaction at t0 ~ Exponential(lambda_I = 20 X0); before it (or
  through the whole calorimeter, if it does not interact) a minimum-ionising track deposits
  0.01 GeV per X0 in its cell. At t0 an electromagnetic fraction f_em, Beta-distributed with mean
  1 - (E / 1 GeV)^(0.82 - 1) (Groom's parametrisation) and concentration 8, showers as a photon
  would; the rest spreads over depth t0 + Gamma(1.6, 1/0.1 X0) (mean 0.8 lambda_I) and a single
  broad profile R_H = 1.2 + 0.6 tau_h R_M, and only h/e = 0.6 of it is visible (nuclear binding,
  invisible energy): hence e/pi > 1, worse resolution and longitudinal and lateral leakage.
- Sampling: each spot's visible energy is the sampling fraction f_s = 0.25 times its energy times
  Gamma(k, 1/k), k = e_spot / s^2 (s = 0.10 sqrt(GeV) for electromagnetic spots, 0.30 for
  hadronic ones), so the visible energy of a contained electromagnetic shower has mean f_s E and
  relative spread s / sqrt(E) (the stochastic term).
- Readout: cell sums, times the layer's gain, plus Gaussian electronic noise (0.005 GeV per cell),
  then zero suppression (cells under 0.015 GeV read 0) and dead cells (read 0).

Two detector conditions of the same physics: `SIMULATION` (nominal) and `DATA` (gains 0.97, 0.94,
0.90 per layer, noise 0.008 GeV, showers 20% broader, one dead cell in the middle layer), so that
the domain shift between "simulation" and "data" is known and controllable.

Images: visible cell energies in GeV, stored as uint8 pixels p = round(255 log(1 + E / 1 MeV) /
log(1 + 50 GeV / 1 MeV)) (E above 50 GeV saturates; steps of 4.3% of E), i.e. [-1, 1] in batches;
`decode(images)` inverts it, `encode` applies it. A generated shower is decoded the same way and
zero-suppressed at the same threshold.

Datasets (`data.name=...`; split train = seed 0, test = seed 1, all = seed 2; "data" seeds + 100):
- `calo`, `calo-data`: e- and pi+ at 5, 10, 20, 50, 100 GeV, 10 classes ("e- 5 GeV", ...),
  balanced; data.max_images showers (default 20,000 for train, 10,000 otherwise). For fast simulation.
- `calo-pid`, `calo-pid-data`: e- (label 0) or pi+ (label 1), E log-uniform in [10, 100] GeV. For
  particle identification and domain adaptation.
Made in a few seconds per 10,000 showers; cached as .npz under the data cache, keyed by the
settings and seed. data.image_size and data.channels must stay unset (cells and layers are physics,
not pixels to resize; data.channels=3 is accepted, as it changes nothing).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.base import ImageData
from genzoo.errors import DataError, GenzooError
from genzoo.io import cache_root, cached_arrays
from genzoo.registry import DATASETS

VERSION = 1  # of the simulator: part of the cache key
PARTICLES = ("e-", "pi+", "gamma")
ENERGY_RANGE = (1.0, 200.0)  # GeV: the simulated range
CLASS_ENERGIES = (5.0, 10.0, 20.0, 50.0, 100.0)  # GeV, of the `calo` datasets
PID_ENERGIES = (10.0, 100.0)  # GeV, log-uniform, of the `calo-pid` datasets
E_UNIT, E_SATURATION = 0.001, 50.0  # GeV: the pixel scale, log(1 + E / E_UNIT)
CRITICAL_ENERGY = 0.0074  # GeV (lead)
B = 0.5  # the b of the longitudinal Gamma profile
LAMBDA_I = 20.0  # nuclear interaction length, in X0
SPOTS_PER_GEV = 10.0
MIP_PER_X0 = 0.01  # GeV deposited per X0 by a minimum-ionising track


@dataclass(frozen=True)
class Detector:
    layers: tuple[float, ...] = (0.0, 3.0, 19.0, 25.0)  # layer boundaries, X0
    cells: int = 16  # cells per side of each layer
    cell_size: float = 0.5  # R_M
    sampling_fraction: float = 0.25
    stochastic_em: float = 0.10  # sqrt(GeV): relative spread s / sqrt(E) of electromagnetic energy
    stochastic_hadronic: float = 0.30  # sqrt(GeV), of the hadronic part
    noise: float = 0.005  # GeV per cell
    threshold: float = 0.015  # GeV: cells under it read 0
    gains: tuple[float, ...] = (1.0, 1.0, 1.0)  # per layer
    lateral_scale: float = 1.0  # every radius times this
    dead_cells: tuple[tuple[int, int, int], ...] = ()  # (layer, row, column)
    fluctuations: bool = True  # shower-to-shower fluctuations of the longitudinal profile


SIMULATION = Detector()
DATA = Detector(gains=(0.97, 0.94, 0.90), noise=0.008, lateral_scale=1.2, dead_cells=((1, 6, 9),))


# ----------------------------------------------------------------------------- the physics


def check_energies(energies: np.ndarray) -> None:
    low, high = ENERGY_RANGE
    outside = energies[(energies < low) | (energies > high) | ~np.isfinite(energies)]
    if len(outside):
        raise GenzooError(f"energy {float(outside[0]):g} GeV is outside the simulated range [{low:g}, {high:g}] GeV; "
                          "choose energies in that range.")


def em_parameters(energies: np.ndarray, photon: bool | np.ndarray = False) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the longitudinal Gamma profile (PDG Eq. 34.36): t_max = (a - 1)/b = ln(E/E_c) + C,
    C = -0.5 (electron) or +0.5 (photon), b = 0.5; the mean depth is a/b (in X0)."""
    t_max = np.log(energies / CRITICAL_ENERGY) + np.where(photon, 0.5, -0.5)
    a = np.maximum(B * t_max + 1.0, 1.0)
    return a, np.full_like(a, B)


def em_fraction_mean(energies: np.ndarray) -> np.ndarray:
    """Mean electromagnetic fraction of a hadronic shower, 1 - (E / 1 GeV)^(k - 1), k = 0.82 (Groom)."""
    return 1.0 - np.power(np.maximum(energies, 1.0), 0.82 - 1.0)


def em_radii(tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core radius, tail radius (R_M) and core probability at relative depth tau = t / t_max."""
    return 0.15 + 0.15 * tau, 0.6 + 0.6 * tau, 0.85 - 0.15 * np.minimum(tau, 2.0) / 2.0


def _spots(rng: np.random.Generator, owners: np.ndarray, energy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spots for components of energy `energy` (M,) belonging to showers `owners` (M,): each gets
    ceil(10 E) spots; returns the spot's component index (S,) and the energy per spot (S,)."""
    counts = np.maximum(np.ceil(energy * SPOTS_PER_GEV), 1).astype(np.int64)  # (M,)
    component = np.repeat(np.arange(len(energy)), counts)  # (S,)
    return component, (energy / counts)[component]


def _radius(rng: np.random.Generator, scale: np.ndarray) -> np.ndarray:
    """Radii with density 2 r R^2 / (r^2 + R^2)^2, by inverting its CDF r^2 / (r^2 + R^2)."""
    u = rng.random(len(scale))
    return scale * np.sqrt(u / (1.0 - u))


def simulate(particles: np.ndarray | list[str], energies: np.ndarray | list[float], seed: int = 0,
             detector: Detector = SIMULATION) -> np.ndarray:
    """Showers of `particles` (N,) ("e-", "pi+", "gamma") of `energies` (N,) GeV: the visible cell
    energies (N, layers, cells, cells) in GeV, float32. Deterministic for a seed."""
    names = np.asarray(particles)
    energies = np.asarray(energies, dtype=np.float64)
    check_energies(energies)
    unknown = set(names.tolist()) - set(PARTICLES)
    if unknown:
        raise GenzooError(f"unknown particle {sorted(unknown)[0]!r}; choose one of: {', '.join(PARTICLES)}.")
    rng = np.random.default_rng(seed)
    n, depth = len(energies), detector.layers[-1]
    hadron = names == "pi+"
    offset = (rng.random((n, 2)) - 0.5) * detector.cell_size  # (N, 2) where the particle enters, R_M

    # hadrons: first interaction, electromagnetic fraction; electrons and photons shower from t = 0
    start = np.where(hadron, rng.exponential(LAMBDA_I, n), 0.0)  # (N,) X0
    mean = np.clip(em_fraction_mean(energies), 0.05, 0.95)
    concentration = 8.0
    f_em = np.where(hadron, rng.beta(mean * concentration, (1 - mean) * concentration), 1.0)  # (N,)
    interacts = start < depth
    f_em = np.where(interacts, f_em, 0.0)
    a, b = em_parameters(energies * f_em + (f_em == 0), photon=hadron | (names == "gamma"))  # (N,) each
    if detector.fluctuations:
        a, b = a * np.exp(0.1 * rng.standard_normal(n)), b * np.exp(0.1 * rng.standard_normal(n))

    deposits = []  # (shower, layer, x, y, visible energy) of every spot, per kind

    # the electromagnetic component
    owners = np.flatnonzero(f_em > 0)
    component, e_spot = _spots(rng, owners, energies[owners] * f_em[owners])
    shower = owners[component]
    t = start[shower] + rng.gamma(a[shower], 1.0 / b[shower])  # (S,) X0
    tau = (t - start[shower]) / np.maximum((a[shower] - 1) / b[shower], 0.5)
    core, tail, p_core = em_radii(tau)
    r = _radius(rng, np.where(rng.random(len(t)) < p_core, core, tail) * detector.lateral_scale)
    deposits.append((shower, t, r, e_spot, detector.stochastic_em))

    # the hadronic component (visible fraction h/e = 0.6)
    owners = np.flatnonzero(hadron & interacts)
    component, e_spot = _spots(rng, owners, energies[owners] * (1 - f_em[owners]))
    shower = owners[component]
    t_h = rng.gamma(1.6, 1.0 / 0.1, len(shower))  # (S,) X0 after the first interaction, mean 16 = 0.8 lambda_I
    r = _radius(rng, (1.2 + 0.6 * t_h / 16.0) * detector.lateral_scale)
    deposits.append((shower, start[shower] + t_h, r, 0.6 * e_spot, detector.stochastic_hadronic))

    # the minimum-ionising track of a hadron before it interacts, in its entry cell
    owners = np.flatnonzero(hadron)
    bounds = np.asarray(detector.layers)
    track_end = np.minimum(start[owners], depth)
    for layer in range(len(bounds) - 1):
        length = np.clip(track_end - bounds[layer], 0, bounds[layer + 1] - bounds[layer])  # (H,) X0 in this layer
        has = length > 0
        deposits.append((owners[has], np.full(has.sum(), (bounds[layer] + bounds[layer + 1]) / 2), np.zeros(has.sum()),
                         MIP_PER_X0 * length[has], None))

    cells, layers = detector.cells, len(bounds) - 1
    visible = np.zeros(n * layers * cells * cells)
    for shower, t, r, energy, stochastic in deposits:
        if stochastic is not None:  # sampling fluctuations: Gamma(k, 1/k) with k = e / s^2 per spot
            k = energy / stochastic**2
            energy = energy * rng.gamma(k, 1.0 / k)
        phi = rng.random(len(r)) * 2 * math.pi
        x = offset[shower, 0] + r * np.cos(phi)  # R_M
        y = offset[shower, 1] + r * np.sin(phi)
        column = np.floor(x / detector.cell_size + cells / 2).astype(np.int64)
        row = np.floor(y / detector.cell_size + cells / 2).astype(np.int64)
        layer = np.searchsorted(bounds, t, side="right") - 1
        inside = (layer >= 0) & (layer < layers) & (row >= 0) & (row < cells) & (column >= 0) & (column < cells)
        flat = ((shower * layers + layer) * cells + row) * cells + column
        visible += np.bincount(flat[inside], weights=detector.sampling_fraction * energy[inside], minlength=len(visible))
    visible = visible.reshape(n, layers, cells, cells)
    return readout(visible, detector, rng)


def readout(visible: np.ndarray, detector: Detector, rng: np.random.Generator) -> np.ndarray:
    """Cell energies (N, L, H, W) GeV -> what the detector reads: gains, noise, zero suppression, dead cells."""
    gains = np.asarray(detector.gains, dtype=np.float64)[None, :, None, None]
    read = visible * gains + detector.noise * rng.standard_normal(visible.shape)
    read[read < detector.threshold] = 0.0
    for layer, row, column in detector.dead_cells:
        read[:, layer, row, column] = 0.0
    return read.astype(np.float32)


# ----------------------------------------------------------------------------- pixels


LOG_SCALE = math.log1p(E_SATURATION / E_UNIT)


def encode(energies: np.ndarray | Tensor) -> Tensor:
    """Cell energies (GeV, any shape) -> uint8 pixels on the logarithmic scale."""
    energies = torch.as_tensor(energies, dtype=torch.float64)
    pixels = 255.0 * torch.log1p(energies.clamp(min=0) / E_UNIT) / LOG_SCALE
    return pixels.round().clamp(0, 255).to(torch.uint8)


def decode(images: Tensor, threshold: float = SIMULATION.threshold) -> Tensor:
    """Images in [-1, 1] (..., L, H, W) -> cell energies in GeV (float64), zero-suppressed at `threshold`."""
    fraction = (images.double().clamp(-1, 1) + 1.0) / 2.0  # pixels / 255
    energies = E_UNIT * torch.expm1(fraction * LOG_SCALE)
    return torch.where(energies < threshold, torch.zeros_like(energies), energies)


# ----------------------------------------------------------------------------- datasets


class Showers(ImageData):
    """Calorimeter showers as images (N, layers, cells, cells) on the pixel scale of this module."""


SPLIT_SEEDS = {"train": 0, "test": 1, "all": 2}


def _cached(name: str, settings: dict, make) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    key = hashlib.sha256(json.dumps({"version": VERSION, "name": name, **settings}, sort_keys=True).encode()).hexdigest()[:24]
    arrays = cached_arrays(cache_root() / "data" / f"calo-{key}.npz", lambda: dict(zip(("pixels", "labels"), make())))
    return arrays["pixels"], arrays["labels"]


def _showers(config: DataConfig, name: str, detector: Detector, pid: bool) -> Showers:
    if config.image_size not in (None, detector.cells) or config.channels not in (None, len(detector.layers) - 1):
        raise DataError(f"dataset {name!r} holds calorimeter showers of {len(detector.layers) - 1} layers of "
                        f"{detector.cells} x {detector.cells} cells, which cannot be resized or recoloured; leave "
                        "data.image_size and data.channels unset (and use it beside data of the same shape).")
    n = config.max_images or (20_000 if config.split == "train" else 10_000)
    seed = SPLIT_SEEDS[config.split] + (100 if detector is DATA else 0)

    def make() -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([seed, 7])
        if pid:
            labels = rng.permutation(n) % 2  # (N,) balanced
            energies = np.exp(rng.uniform(*np.log(PID_ENERGIES), n))
            particles = np.array(PARTICLES[:2])[labels]
        else:
            labels = rng.permutation(n) % (2 * len(CLASS_ENERGIES))  # (N,) class = particle * 5 + energy index
            particles = np.array(PARTICLES[:2])[labels // len(CLASS_ENERGIES)]
            energies = np.asarray(CLASS_ENERGIES)[labels % len(CLASS_ENERGIES)]
        chunks = [encode(simulate(particles[i : i + 2000], energies[i : i + 2000], seed=[seed, i], detector=detector)).numpy()
                  for i in range(0, n, 2000)]
        return np.concatenate(chunks), labels.astype(np.int64)

    pixels, labels = _cached(name, {"n": n, "seed": seed, "pid": pid, "detector": asdict(detector)}, make)
    names = list(PARTICLES[:2]) if pid else [f"{p} {e:g} GeV" for p in PARTICLES[:2] for e in CLASS_ENERGIES]
    condition = "data" if detector is DATA else "simulation"
    what = "e- or pi+ of 10-100 GeV" if pid else "e- and pi+ at 5-100 GeV"
    return Showers(torch.from_numpy(pixels), torch.from_numpy(labels), num_classes=len(names), class_names=names,
                   split=config.split, source=f"{name}: {n} toy calorimeter showers ({what}; {condition} conditions; split {config.split})")


@DATASETS.register("calo")
def calo(config: DataConfig) -> Showers:
    """Toy calorimeter showers, e- and pi+ at 5-100 GeV (10 classes), nominal 'simulation' conditions."""
    return _showers(config, "calo", SIMULATION, pid=False)


@DATASETS.register("calo-data")
def calo_data(config: DataConfig) -> Showers:
    """Toy calorimeter showers as `calo`, under 'data' conditions (miscalibrated, noisier, broader, a dead cell)."""
    return _showers(config, "calo-data", DATA, pid=False)


@DATASETS.register("calo-pid")
def calo_pid(config: DataConfig) -> Showers:
    """Toy calorimeter: e- (0) or pi+ (1) of 10-100 GeV, 'simulation' conditions, for particle identification."""
    return _showers(config, "calo-pid", SIMULATION, pid=True)


@DATASETS.register("calo-pid-data")
def calo_pid_data(config: DataConfig) -> Showers:
    """Toy calorimeter: e- (0) or pi+ (1) of 10-100 GeV under 'data' conditions, the adaptation target."""
    return _showers(config, "calo-pid-data", DATA, pid=True)


def class_particle_energy(name: str) -> tuple[str, float]:
    """'e- 10 GeV' -> ('e-', 10.0)."""
    particle, energy, _ = name.split()
    return particle, float(energy)


__all__ = ["DATA", "Detector", "SIMULATION", "Showers", "decode", "encode", "replace", "simulate"]

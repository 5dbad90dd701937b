"""Simulate: showers of one particle at one energy from the toy calorimeter, and from a fast simulator.

The physicist's check of a fast simulator at one point of phase space: `count` showers of `particle`
at `energy` GeV from the parametric simulator (genzoo/data/calo.py; any energy in its range
[1, 200] GeV, "simulation" or "data" detector conditions), and, with `run=` a generator trained on
the `calo` showers (the presets calo-gan, calo-vae, calo-ddpm; class-conditional on particle and
energy), as many from the generator for the same class. The report shows the mean shower per layer
of each, the histograms of the observables (total energy, depth, lateral width, first-layer
fraction), and a table of the 1-D Wasserstein distance per observable, the classifier two-sample
AUC (0.5: indistinguishable) and showers per second of each, with the speed-up. The showers, in GeV,
are saved as `showers.npz` (`simulated`, and `generated` with a run).

An energy outside the simulated range, or one the run was not trained at (a class-conditional model
knows its classes only), is refused in one sentence before anything is written.

    genzoo run simulate particle=e- energy=50 count=2000
    genzoo run simulate particle=pi+ energy=20 run=runs/calo-gan
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
import torch
from pydantic import PositiveFloat, PositiveInt

from genzoo.config import PathSetting
from genzoo.errors import GenzooError
from genzoo.procedures.base import Procedure, ProcedureConfig, ProcedureContext
from genzoo.registry import PROCEDURES

DETECTORS = {"calo": "simulation", "calo-data": "data"}  # the fast-simulation datasets and their conditions
PANELS = (("energy", "total visible energy (GeV)"), ("depth", "mean depth (X0)"),
          ("width_1", "lateral width, middle layer (cells)"), ("fraction_0", "energy fraction, layer 0"))


class SimulateConfig(ProcedureConfig):
    particle: Literal["e-", "pi+", "gamma"] = "e-"
    energy: PositiveFloat = 50.0  # GeV, in the simulated range [1, 200]
    count: PositiveInt = 1000  # showers from the simulator (and from the run)
    detector: Literal["simulation", "data"] | None = None  # None: the run's (calo: simulation), or simulation
    run: PathSetting | None = None  # a fast simulator trained on calo or calo-data, compared at this class
    ema: bool | None = None  # the run's EMA weights (None: when it has them)
    seed: int = 0


@PROCEDURES.register("simulate")
class Simulate(Procedure):
    Config = SimulateConfig

    def __init__(self, config: SimulateConfig) -> None:
        super().__init__(config)
        from genzoo.data.calo import check_energies

        check_energies(np.asarray([config.energy]))  # one sentence for an energy outside [1, 200] GeV
        self.model, self.label, self.notes = None, None, []
        self.detector = config.detector or "simulation"
        if config.run is not None:
            self._load_run(config)

    def _load_run(self, config: SimulateConfig) -> None:
        from genzoo.config import build_config
        from genzoo.data.calo import class_particle_energy
        from genzoo.loading import load
        from genzoo.train.checkpoint import RunFolder

        data = build_config(RunFolder(config.run).read_config()).data
        if data.name not in DETECTORS:
            raise GenzooError(f"{str(config.run)!r} was trained on {data.name!r}, not on calorimeter showers; give a run "
                              "of calo-gan, calo-vae or calo-ddpm (data.name=calo or calo-data).")
        model = load(config.run, ema=config.ema)
        names = list(model.info.class_names or [])
        if not getattr(model, "conditional", False) or not names:
            raise GenzooError(f"{str(config.run)!r} is not conditional on particle and energy, so it cannot make showers "
                              "of one class; train a conditional preset (calo-gan, calo-vae, calo-ddpm).")
        classes = [class_particle_energy(name) for name in names]
        wanted = (config.particle, float(config.energy))
        if wanted not in classes:
            energies = ", ".join(f"{e:g}" for e in sorted({e for _, e in classes}))
            particles = " and ".join(sorted({p for p, _ in classes}))
            raise GenzooError(f"{str(config.run)!r} was trained on {particles} at {energies} GeV only, not "
                              f"{config.particle} at {config.energy:g} GeV; choose one of those (the simulator alone, "
                              "without run=, simulates any energy in [1, 200] GeV).")
        self.model, self.label = model, classes.index(wanted)
        self.detector = config.detector or DETECTORS[data.name]
        if self.detector != DETECTORS[data.name]:
            self.notes.append(f"the run learnt {DETECTORS[data.name]} conditions and the simulator runs {self.detector} "
                              "conditions, so they differ by the detector shift as well.")

    def run(self, context: ProcedureContext) -> None:
        from rich.progress import Progress

        from genzoo.data.calo import DATA, SIMULATION, decode, simulate
        from genzoo.metrics.physics import auc_inputs, classifier_auc, observables, wasserstein_1d

        config, n = self.config, self.config.count
        chunks = [(start, min(500, n - start)) for start in range(0, n, 500)]
        simulated, generated = [], []
        timing = {"simulator": 0.0, "generator": 0.0}
        generator = torch.Generator().manual_seed(config.seed)
        with Progress(disable=not context.progress, transient=True) as progress:
            task = progress.add_task(f"{config.particle} {config.energy:g} GeV", total=n * (2 if self.model else 1))
            for start, size in chunks:
                began = time.perf_counter()
                simulated.append(torch.from_numpy(simulate([config.particle] * size, [config.energy] * size,
                                                           seed=[config.seed, start],
                                                           detector=DATA if self.detector == "data" else SIMULATION)))
                timing["simulator"] += time.perf_counter() - began
                progress.advance(task, size)
                if self.model is not None:
                    began = time.perf_counter()
                    with torch.no_grad():
                        labels = torch.full((size,), self.label, dtype=torch.long)
                        generated.append(decode(self.model.generate(size, labels=labels, generator=generator)).float())
                    timing["generator"] += time.perf_counter() - began
                    progress.advance(task, size)
        sets = {"simulator": torch.cat(simulated)}  # (n, 3, 16, 16) GeV
        if generated:
            sets["generator"] = torch.cat(generated)
        obs = {name: observables(showers.double()) for name, showers in sets.items()}
        result: dict = {"particle": config.particle, "energy_gev": config.energy, "count": n, "detector": self.detector,
                        "notes": self.notes}
        for name, showers in sets.items():
            energy = obs[name]["energy"]
            result[name] = {"showers_per_s": n / timing[name], "mean_energy_gev": float(energy.mean()),
                            "resolution": float(energy.std() / energy.mean()), "mean_depth_x0": float(obs[name]["depth"].mean())}
        if generated:
            result["w1"] = {key: wasserstein_1d(obs["simulator"][key], obs["generator"][key]) for key, _ in PANELS}
            inputs = {name: auc_inputs(showers.double(), obs[name]) for name, showers in sets.items()}  # as `calo-auc`
            result["classifier_auc"] = classifier_auc(inputs["simulator"], inputs["generator"], seed=config.seed)
            result["speed_up"] = result["generator"]["showers_per_s"] / result["simulator"]["showers_per_s"]
            result["run"] = str(config.run)
        np.savez_compressed(context.folder.path / "showers.npz", **{("simulated" if k == "simulator" else "generated"): v.numpy()
                                                                    for k, v in sets.items()})
        title = f"{config.particle} at {config.energy:g} GeV, {n} showers, {self.detector} conditions"
        context.figure("mean_shower", self._mean_figure(sets, title), "the mean shower per layer (log colour scale)")
        context.figure("observables", self._histogram_figure(obs, title), "the observables' histograms")
        context.result(**result)

    @staticmethod
    def _mean_figure(sets: dict, title: str):  # noqa: ANN205
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import LogNorm

        means = {name: showers.mean(0).numpy() for name, showers in sets.items()}  # (3, 16, 16) GeV each
        top = max(float(m.max()) for m in means.values())
        figure, axes = plt.subplots(len(means), 3, figsize=(9, 3 * len(means)), squeeze=False)
        for row, (name, mean) in enumerate(means.items()):
            for layer in range(mean.shape[0]):
                image = axes[row, layer].imshow(np.maximum(mean[layer], top * 1e-5), norm=LogNorm(top * 1e-5, top), cmap="inferno")
                axes[row, layer].set_title(f"{name}, layer {layer}", fontsize=8)
                axes[row, layer].set_xticks([]), axes[row, layer].set_yticks([])
        figure.colorbar(image, ax=axes.ravel().tolist(), label="mean cell energy (GeV)")
        figure.suptitle(title, fontsize=9)
        return figure

    @staticmethod
    def _histogram_figure(obs: dict, title: str):  # noqa: ANN205
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(1, len(PANELS), figsize=(14, 3.2))
        for axis, (key, label) in zip(axes, PANELS):
            edges = np.histogram_bin_edges(obs["simulator"][key].numpy(), bins=30)
            for (name, values), colour in zip(obs.items(), ("black", "crimson")):
                axis.hist(np.clip(values[key].numpy(), edges[0], edges[-1]), bins=edges, histtype="step", density=True,
                          color=colour, label=name)
            axis.set_xlabel(label)
        axes[0].legend(fontsize=7)
        figure.suptitle(title + " (values outside the range drawn in the end bins)", fontsize=9)
        return figure

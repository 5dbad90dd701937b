"""Loss curves from `log.jsonl`, one panel per phase, drawn with matplotlib."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from genzoo.io import atomic_write
from genzoo.train.checkpoint import RunFolder
from genzoo.train.log import read_log


MARKERS_UP_TO = 40  # records drawn as dots on the line: a short run's few points stay visible


def plot_losses(run: RunFolder) -> Path | None:
    """Write `losses.png` in the run folder; None when there is nothing logged yet."""
    records = read_log(run.log)
    if not records:
        return None
    import matplotlib.pyplot as plt

    figure = loss_figure(records)
    atomic_write(run.losses_plot, lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    plt.close(figure)
    return run.losses_plot


def loss_figure(records: list[dict]):  # noqa: ANN201  (a matplotlib Figure)
    """One panel per phase, a line per loss; with few records (a short run) each is also drawn as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, list[str]] = defaultdict(list)
    for key in records[-1]:
        if "/" in key:
            panels[key.split("/")[0]].append(key)
    figure, axes = plt.subplots(1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.4), squeeze=False)
    steps = [r["step"] for r in records]
    dots = {"marker": "o", "markersize": 3} if len(steps) <= MARKERS_UP_TO else {}
    for axis, (phase, keys) in zip(axes[0], panels.items()):
        for key in keys:
            axis.plot(steps, [r.get(key, float("nan")) for r in records], label=key.split("/", 1)[1], **dots)
        axis.set_title(phase)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure

"""Source and target features before and after domain adaptation: the picture of Ganin et al. 2016
(Fig. 2 / Sec. 5.2.3, a t-SNE of the features of source-only and adapted networks), for any model that can
`encode` a run with source/target data (`data.target`, e.g. `dann`).

A few hundred images of each domain, the same ones before and after, pass through the network at its
initial weights (`genzoo.loading.initial_model`: the run's seed rebuilds them) and at its trained (EMA,
when present) weights; each set of features is projected to 2-D by PCA (exact, through an SVD of the
centred features: deterministic) and, when scikit-learn is installed and each domain has at least 100
images, by t-SNE (van der Maaten and Hinton 2008; perplexity 30, seeded). Points are coloured by domain and marked by class; each panel's title gives the proxy
A-distance of those features (genzoo.metrics.adaptation), 0 when the domains cannot be told apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genzoo.io import atomic_write
from genzoo.metrics.adaptation import proxy_a_distance

MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")  # one per class, repeating past 10
COLOURS = {"source": "tab:blue", "target": "tab:red"}
TSNE_MIN = 100  # images of each domain below which no t-SNE is drawn: perplexity 30 needs well over 3 x 30 points


def pca_2d(features: Tensor) -> Tensor:
    """(N, D) -> (N, 2): the first two principal components, signs fixed so that each component's
    largest-magnitude loading is positive (so the picture does not flip between runs)."""
    centred = features.double() - features.double().mean(0)  # (N, D)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)  # vh (min(N, D), D)
    components = vh[:2]  # (2, D)
    signs = torch.sign(components.gather(1, components.abs().argmax(1, keepdim=True)))  # (2, 1)
    return (centred @ (components * signs).T).float()  # (N, 2)


def tsne_2d(features: Tensor, seed: int = 0) -> Tensor | None:
    """(N, D) -> (N, 2) by scikit-learn's t-SNE (PCA initialisation, seeded); None without scikit-learn."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        return None
    perplexity = min(30.0, (len(features) - 1) / 3)
    points = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(features.double().numpy())
    return torch.from_numpy(points).float()


def domain_sample(data: Any, n: int, seed: int = 0) -> dict[str, Tensor | None]:
    """Up to n seeded images of each side of source/target data, and their labels (the target's may be None)."""
    source, target = data.source_data, data.target_dataset()
    generator = torch.Generator().manual_seed(seed)
    picked = {}
    for name, side in (("source", source), ("target", target)):
        indices = torch.randperm(len(side), generator=generator)[: min(n, len(side))]
        batch = side.batch(indices)
        picked[name], picked[f"{name}_label"] = batch["image"], batch.get("label")
    return picked


@torch.no_grad()
def features_of(model: Any, images: Tensor, batch_size: int = 256) -> Tensor:
    device = next(model.parameters()).device
    return torch.cat([model.encode(x.to(device)).float().cpu() for x in images.split(batch_size)])  # (N, D)


def feature_picture(models: dict[str, Any], data: Any, path: Path, n: int = 300, seed: int = 0) -> str:
    """Write the picture of each model's source and target features (columns, e.g. {"before": initial, "after":
    trained}) to `path`; returns its caption. Rows: PCA, and t-SNE when scikit-learn is installed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sample = domain_sample(data, n, seed)
    count = {side: len(sample[side]) for side in ("source", "target")}
    columns = []
    for name, model in models.items():
        source, target = features_of(model, sample["source"]), features_of(model, sample["target"])
        distance, _ = proxy_a_distance(source, target, seed=seed)
        both = torch.cat([source, target])  # (N_s + N_t, D)
        tsne = tsne_2d(both, seed) if min(count.values()) >= TSNE_MIN else None
        columns.append((name, distance, {"PCA": pca_2d(both), "t-SNE": tsne}))
    methods = [m for m in ("PCA", "t-SNE") if all(c[2][m] is not None for c in columns)]
    figure, axes = plt.subplots(len(methods), len(columns), figsize=(4.2 * len(columns), 4 * len(methods)), squeeze=False)
    for column, (name, distance, projections) in enumerate(columns):
        for row, method in enumerate(methods):
            axis, points = axes[row][column], projections[method]
            for side, part in (("source", points[: count["source"]]), ("target", points[count["source"]:])):
                labels = sample[f"{side}_label"]
                groups = [(None, slice(None))] if labels is None else [(k, labels == k) for k in labels.unique().tolist()]
                for k, where in groups:
                    axis.scatter(part[where, 0], part[where, 1], s=9, alpha=0.6, color=COLOURS[side],
                                 marker="o" if k is None else MARKERS[k % len(MARKERS)], linewidths=0)
            axis.set_title(f"{name}: {method}, A-distance {distance:.2f}", fontsize=9)
            axis.set_xticks([])
            axis.set_yticks([])
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="", label=side) for side, c in COLOURS.items()]
    axes[0][0].legend(handles=handles, fontsize=7, loc="best")
    figure.suptitle(f"features of {count['source']} source and {count['target']} target images; colour: domain, "
                    "marker: class", fontsize=9)
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    plt.close(figure)
    return (f"source (blue) and target (red) features, {' and '.join(models)} ({', '.join(methods)}; marker: class), "
            "with the proxy A-distance of each (0: the domains cannot be told apart, 2: linearly separable)")

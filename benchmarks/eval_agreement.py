"""Agreement of genzoo's metrics with the reference libraries and with an exact reference, on genzoo's
own `fmnist` features of real Fashion-MNIST images (singular covariances: dead features).

FID: every implementation against a 40-digit mpmath evaluation of the same covariances (np.cov in
float64; the trace term on the coordinates that vary, since zero rows add nothing to it).
P/R/D/C: genzoo and prdc against prdc's own counting on exact (difference-based) distances.
KID, IS: genzoo against torch-fidelity and torchmetrics where they compute the same thing, and where
they do not (other subsets; N not a multiple of the splits). Prints a table and writes JSON.

    python benchmarks/eval_agreement.py --data-root /usr/share/datasets/fashion-mnist
    PYTHONPATH=<an older checkout> python benchmarks/eval_agreement.py --json before.json   # the same, old code
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import time
import warnings
from pathlib import Path

import mpmath
import numpy as np
import torch
from scipy.spatial.distance import cdist

import genzoo
from genzoo.config import DataConfig
from genzoo.data import build_dataset
from genzoo.metrics.features import load_features
from genzoo.metrics.functional import RunningMoments, fid_from_moments, inception_score, kernel_inception_distance

try:
    from genzoo.metrics.manifold import density_coverage, precision_recall
except ImportError:  # code from before genzoo.metrics.manifold
    from genzoo.metrics.functional import density_coverage, precision_recall  # type: ignore[attr-defined, no-redef]

warnings.filterwarnings("ignore")


def features_of(images: torch.Tensor) -> torch.Tensor:
    network = load_features("fmnist")
    with torch.no_grad():
        return torch.cat([network(images[i : i + 500].float() / 127.5 - 1)["features"]
                          for i in range(0, len(images), 500)]).double()  # (N, 128)


def mp_fid(x: np.ndarray, y: np.ndarray) -> mpmath.mpf:
    """40-digit FID of the float64 moments (np.cov) of x and y, the trace term on the varying coordinates."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    live = (s1 != 0).any(0) & (s2 != 0).any(0)
    with mpmath.workdps(40):
        a, b = mpmath.matrix(s1[live][:, live].tolist()), mpmath.matrix(s2[live][:, live].tolist())
        evals, evecs = mpmath.eigsy(a)
        root = evecs * mpmath.diag([mpmath.sqrt(max(e, 0)) for e in evals]) * evecs.T
        inner = mpmath.eigsy(root * b * root, eigvals_only=True)
        trace = mpmath.fsum(mpmath.mpf(float(v)) for v in np.diag(s1)) + mpmath.fsum(mpmath.mpf(float(v)) for v in np.diag(s2))
        mean = mpmath.fsum((mpmath.mpf(float(p)) - mpmath.mpf(float(q))) ** 2 for p, q in zip(mu1, mu2))
        return mean + trace - 2 * mpmath.fsum(mpmath.sqrt(max(e, 0)) for e in inner)


def fid_rows(cases: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> list[dict]:
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torchmetrics.image.fid import FrechetInceptionDistance

    class Passthrough(torch.nn.Module):
        num_features = 128

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    rows = []
    for name, (real, fake) in cases.items():
        start = time.perf_counter()
        exact = mp_fid(real.numpy(), fake.numpy())
        exact = 0 if abs(exact) < 1e-25 else exact  # identical sets: 0 up to the 40-digit rounding
        moments = RunningMoments()
        for batch in real.split(500):
            moments.update(batch)
        values = {"genzoo": fid_from_moments(moments, RunningMoments().update(fake))}
        values["pytorch-fid"] = float(calculate_frechet_distance(real.mean(0).numpy(), np.cov(real.numpy(), rowvar=False),
                                                                 fake.mean(0).numpy(), np.cov(fake.numpy(), rowvar=False)))
        values["torch-fidelity"] = fid_statistics_to_metric(fid_features_to_statistics(real), fid_features_to_statistics(fake),
                                                            verbose=False)["frechet_inception_distance"]
        metric = FrechetInceptionDistance(feature=Passthrough())
        metric.update(real, real=True)
        metric.update(fake, real=False)
        values["torchmetrics"] = float(metric.compute())
        for library, value in values.items():
            difference = abs(value - float(exact))
            rows.append({"metric": "FID", "case": name, "library": library, "value": value, "reference": float(exact),
                         "abs": difference, "rel": difference / abs(float(exact)) if exact != 0 else None})
        print(f"  FID {name}: {time.perf_counter() - start:.1f} s", flush=True)
    return rows


def prdc_rows(features: torch.Tensor) -> list[dict]:
    import prdc

    generator = torch.Generator().manual_seed(0)
    base = features[:100]
    near = [base + 1e-9 * j * torch.randn(base.shape, generator=generator, dtype=torch.float64).sign() for j in range(1, 6)]
    cases = {
        "memorised: 5 near-copies (~1e-9) per real, exact copies among the fakes": (
            torch.cat([base, *near, features[1000:1400]]),
            torch.cat([base, base + 3e-9 * torch.randn(base.shape, generator=generator, dtype=torch.float64).sign(),
                       features[1500:1800]])),
        "duplicated rows: each real 6 times (radius 0), fakes copy reals": (
            features[:150].repeat(6, 1), torch.cat([features[:100], features[1000:1200]])),
    }
    rows = []
    for name, (real, fake) in cases.items():
        with contextlib.redirect_stdout(io.StringIO()):
            plain = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
            original = prdc.prdc.compute_pairwise_distance
            prdc.prdc.compute_pairwise_distance = lambda a, b=None: cdist(a, a if b is None else b)
            try:
                exact = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
            finally:
                prdc.prdc.compute_pairwise_distance = original
        ours = {**precision_recall(real, fake, k=5), **density_coverage(real, fake, k=5)}
        for library, values in (("genzoo", ours), ("prdc (scikit-learn distances)", plain)):
            for key in ("precision", "recall", "density", "coverage"):
                difference = abs(float(values[key]) - float(exact[key]))
                rows.append({"metric": key, "case": name, "library": library, "value": float(values[key]),
                             "reference": float(exact[key]), "abs": difference,
                             "rel": difference / abs(float(exact[key])) if exact[key] else None})
    return rows


def kid_is_rows(features: torch.Tensor) -> list[dict]:
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    from genzoo.metrics.functional import mmd2_unbiased

    class Passthrough(torch.nn.Module):
        num_features = 128

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    rows = []

    def add(metric: str, case: str, library: str, ours: float, reference: float) -> None:
        difference = abs(ours - reference)
        rows.append({"metric": metric, "case": case, "library": library, "value": ours, "reference": reference,
                     "abs": difference, "rel": difference / abs(reference)})

    real, fake = features[:2000], features[2000:3500]
    fidelity = kid_features_to_metric(real, fake, kid_subsets=20, kid_subset_size=500, rng_seed=3, verbose=False)
    rng = np.random.RandomState(3)
    same = [mmd2_unbiased(real[rng.choice(2000, 500, replace=False)], fake[rng.choice(1500, 500, replace=False)])
            for _ in range(20)]
    add("KID", "20 subsets of 500, torch-fidelity's subsets", "torch-fidelity", float(np.mean(same)),
        fidelity["kernel_inception_distance_mean"])
    ours, _ = kernel_inception_distance(real, fake, num_subsets=20, subset_size=500, generator=torch.Generator().manual_seed(3))
    add("KID", "20 subsets of 500, genzoo's own subsets", "torch-fidelity", ours, fidelity["kernel_inception_distance_mean"])
    metric = KernelInceptionDistance(feature=Passthrough(), subsets=20, subset_size=500)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    torch.manual_seed(7)
    theirs = float(metric.compute()[0])
    torch.manual_seed(7)
    ours, _ = kernel_inception_distance(real, fake, num_subsets=20, subset_size=500)
    add("KID", "20 subsets of 500, the same torch seed", "torchmetrics", ours, theirs)

    logits = torch.randn(1003, 10, generator=torch.Generator().manual_seed(99), dtype=torch.float64) * 3
    reference = isc_features_to_metric(logits, splits=10, shuffle=False)["inception_score_mean"]
    add("IS", "N = 1003, 10 splits", "torch-fidelity", inception_score(logits=logits, splits=10)[0], reference)
    for n in (1000, 1003):
        metric = InceptionScore(feature=Passthrough(), splits=10)
        metric.update(logits[:n])
        torch.manual_seed(11)
        theirs = float(metric.compute()[0])
        torch.manual_seed(11)
        add("IS", f"N = {n}, 10 splits, the same permutation", "torchmetrics",
            inception_score(logits=logits[:n], splits=10, shuffle=True)[0], theirs)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None, help="folder of the full Fashion-MNIST (else the usual search)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/eval_agreement.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    test = build_dataset(DataConfig(name="fashion-mnist", split="test", root=args.data_root))
    train = build_dataset(DataConfig(name="fashion-mnist", split="train", root=args.data_root))
    if train.notes:
        raise SystemExit("needs the full Fashion-MNIST (Debian package dataset-fashion-mnist): " + train.notes[0])
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:10_000]
    f_test, f_train = features_of(test.images), features_of(train.images[order])
    dead = ((f_test == 0).all(0) & (f_train == 0).all(0)).sum().item()
    print(f"fmnist features: {dead} of 128 are 0 on every one of these 20,000 images")
    cases = {
        "train 10k vs test 10k (the README's sanity case)": (f_train, f_test),
        "test 10k against itself": (f_test, f_test),
        "test 5k vs the other test 5k": (f_test[:5000], f_test[5000:]),
        "n_fake != n_real: test 3k vs train 7k": (f_test[:3000], f_train[:7000]),
        "duplicated rows: test 5k twice vs test 10k": (f_test[:5000].repeat(2, 1), f_test),
    }
    rows = fid_rows(cases) + prdc_rows(f_test) + kid_is_rows(f_test)
    print(f"{'metric':<10} {'case':<72} {'library':<30} {'abs diff':>9} {'rel diff':>9}")
    for row in rows:
        rel = "-" if row["rel"] is None else f"{row['rel']:.1e}"
        print(f"{row['metric']:<10} {row['case'][:72]:<72} {row['library']:<30} {row['abs']:>9.1e} {rel:>9}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                                     "genzoo": str(Path(genzoo.__file__).parent), "dead_features": dead, "rows": rows},
                                    indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

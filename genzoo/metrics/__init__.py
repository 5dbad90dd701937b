"""Sample-quality metrics: feature networks, protocol-tagged scores, evaluation of runs and folders."""

from genzoo.metrics import features, scores  # noqa: F401  (registers feature networks and metrics)
from genzoo.metrics import accuracy  # noqa: F401  (classifier accuracy, clean and robust)
from genzoo.metrics import paired, translation  # noqa: F401  (registers the translation metrics)
from genzoo.metrics import ppl  # noqa: F401  (registers the perceptual path length)
from genzoo.metrics import prompts  # noqa: F401  (prompt accuracy of text-to-image models)
from genzoo.metrics import physics  # noqa: F401  (calorimeter showers: observables, W1, FPD/KPD, classifier AUC)
from genzoo.metrics import adaptation  # noqa: F401  (the proxy A-distance between source and target features)
from genzoo.metrics.context import EvalContext, Score
from genzoo.metrics.evaluate import DEFAULT_METRICS, evaluate, evaluate_folders

__all__ = ["DEFAULT_METRICS", "EvalContext", "Score", "evaluate", "evaluate_folders"]

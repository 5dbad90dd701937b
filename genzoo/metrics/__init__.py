"""Sample-quality metrics: feature networks, protocol-tagged scores, evaluation of runs and folders."""

from genzoo.metrics import features, scores  # noqa: F401  (registers feature networks and metrics)
from genzoo.metrics import prompts  # noqa: F401  (prompt accuracy of text-to-image models)
from genzoo.metrics.context import EvalContext, Score
from genzoo.metrics.evaluate import DEFAULT_METRICS, evaluate, evaluate_folders

__all__ = ["DEFAULT_METRICS", "EvalContext", "Score", "evaluate", "evaluate_folders"]

"""genzoo: train, sample, evaluate and compare deep generative models.

    import genzoo
    run = genzoo.train("dcgan", data="fashion-mnist", steps=2000)
    model = genzoo.load("runs/dcgan")
    images = model.generate(16)          # (16, C, H, W) in [-1, 1]
    scores = genzoo.evaluate("runs/dcgan", metrics=["fid", "pr"])
"""

from genzoo import data, metrics, models  # noqa: F401  (fill the registries)
from genzoo.api import list_datasets, list_families, list_presets, load, train
from genzoo.errors import GenzooError
from genzoo.metrics import evaluate, evaluate_folders

__version__ = "0.1.0"
__all__ = ["GenzooError", "__version__", "evaluate", "evaluate_folders", "list_datasets", "list_families",
           "list_presets", "load", "train"]

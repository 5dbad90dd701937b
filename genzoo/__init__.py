"""genzoo: train, sample, evaluate and compare deep generative models.

    import genzoo
    run = genzoo.train("dcgan", data="fashion-mnist", steps=2000)
    model = genzoo.load("runs/dcgan")
    images = model.generate(16)          # (16, C, H, W) in [-1, 1]
"""

from genzoo import data, models  # noqa: F401  (fill the registries)
from genzoo.api import list_datasets, list_families, list_presets, load, train
from genzoo.errors import GenzooError

__version__ = "0.1.0"
__all__ = ["GenzooError", "__version__", "list_datasets", "list_families", "list_presets", "load", "train"]

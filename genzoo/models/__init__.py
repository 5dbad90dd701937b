"""Model families. Each module registers one family with `@MODELS.register(name)`."""

from genzoo.models import autoencoder, classifier, dann, ddpm, gan, glo, swap, vae  # noqa: F401  (registers the families)
from genzoo.models.base import CAPABILITIES, DataInfo, GenerativeModel, Phase, capabilities

__all__ = ["CAPABILITIES", "DataInfo", "GenerativeModel", "Phase", "capabilities"]

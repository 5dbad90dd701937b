"""Model families. Each module registers one family with `@MODELS.register(name)`."""

from genzoo.models import autoencoder, classifier, ddpm, gan, glo, swap, vae  # noqa: F401  (registers the families)
from genzoo.models import autoencoder_kl, gan_cls, latent_diffusion  # noqa: F401  (text to image)
from genzoo.models.base import CAPABILITIES, DataInfo, GenerativeModel, Phase, capabilities

__all__ = ["CAPABILITIES", "DataInfo", "GenerativeModel", "Phase", "capabilities"]

"""Model families. Each module registers one family with `@MODELS.register(name)`."""

from genzoo.models import (  # noqa: F401  (registers the families)
    autoencoder, autoencoder_kl, chairs, char_lm, classifier, cyclegan, dann, ddpm, gan, gan_cls, glo, latent_diffusion, nerf,
    pix2pix, pixelcnn, progan, stargan, stylegan, swap, vae,
)
from genzoo.models.base import CAPABILITIES, DataInfo, GenerativeModel, Phase, capabilities

__all__ = ["CAPABILITIES", "DataInfo", "GenerativeModel", "Phase", "capabilities"]

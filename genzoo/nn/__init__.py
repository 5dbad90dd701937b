"""Building blocks that two or more families share."""

from genzoo.nn.dcgan import DownConvStack, UpConvStack, base_and_doublings, init_dcgan_weights

__all__ = ["DownConvStack", "UpConvStack", "base_and_doublings", "init_dcgan_weights"]

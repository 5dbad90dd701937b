"""Building blocks that two or more families share."""

from genzoo.nn.dcgan import DownConvStack, UpConvStack, base_and_doublings, init_dcgan_weights

__all__ = ["DownConvStack", "UpConvStack", "base_and_doublings", "init_dcgan_weights"]

from genzoo.nn.mlp import MLPDiscriminatorBody, MLPGenerator  # noqa: E402
from genzoo.nn.resnet import ResNetDiscriminatorBody, ResNetGenerator  # noqa: E402

__all__ += ["MLPDiscriminatorBody", "MLPGenerator", "ResNetDiscriminatorBody", "ResNetGenerator"]
from genzoo.nn.unet import UNet  # noqa: E402

__all__ += ["UNet"]
from genzoo.nn.decoding import sequential_cpu  # noqa: E402

__all__ += ["sequential_cpu"]

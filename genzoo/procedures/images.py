"""Single images for procedures: a file, or a photo that ships with a library installed here.

`load_image(spec, size)` reads `spec` — a file path, or `skimage:NAME` (scikit-image's bundled
astronaut, chelsea, coffee, rocket, brick, gravel, grass, camera, ...), `sklearn:china` or
`sklearn:flower` (scikit-learn's sample images), `matplotlib:grace_hopper`, or `opencv:starry_night`
(Van Gogh's painting from Debian's opencv-doc package, where installed) — as an RGB tensor
(1, 3, H, W) in [-1, 1] whose longer side is `size`. None of them is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.errors import GenzooError

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
SKIMAGE = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
           "colorwheel", "brick", "gravel", "grass", "camera", "moon", "text", "coins", "page", "horse", "cat")


def _skimage(name: str) -> np.ndarray:
    if name not in SKIMAGE:
        raise GenzooError(f"scikit-image has no bundled image {name!r} here; choose one of: {', '.join(SKIMAGE)}.")
    import skimage.data

    return getattr(skimage.data, name)()


def _sklearn(name: str) -> np.ndarray:
    from sklearn.datasets import load_sample_image

    if name.removesuffix(".jpg") not in ("china", "flower"):
        raise GenzooError(f"scikit-learn has no sample image {name!r}; choose china or flower.")
    return load_sample_image(name.removesuffix(".jpg") + ".jpg")


def _matplotlib(name: str) -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    if name.removesuffix(".jpg") != "grace_hopper":
        raise GenzooError(f"matplotlib has no sample image {name!r}; choose grace_hopper.")
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


def _opencv(name: str) -> np.ndarray:
    path = OPENCV_DATA / (name if Path(name).suffix else name + ".jpg")
    if not path.is_file():
        raise GenzooError(f"{path} is not here; install Debian's opencv-doc package (apt-get install opencv-doc) "
                          "or give the image's path.")
    return _file(path)


def _file(path: Path) -> np.ndarray:
    from genzoo.data.image_folder import _to_8bit, open_image

    if not path.exists():
        raise GenzooError(f"image {str(path)!r} does not exist; give an image file or a bundled photo such as skimage:astronaut.")
    if path.is_dir():
        raise GenzooError(f"{str(path)!r} is a folder; give one image file.")
    return np.asarray(_to_8bit(open_image(path)).convert("RGB"))


SOURCES: dict[str, Callable[[str], np.ndarray]] = {"skimage": _skimage, "sklearn": _sklearn, "matplotlib": _matplotlib,
                                                   "opencv": _opencv}


def load_image(spec: str, size: int | None = None) -> Tensor:
    """(1, 3, H, W) in [-1, 1], the longer side resized to `size` (antialiased bilinear) when given."""
    source, _, name = spec.partition(":")
    array = SOURCES[source](name) if source in SOURCES and name else _file(Path(spec).expanduser())
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    image = torch.from_numpy(np.ascontiguousarray(array[..., :3])).permute(2, 0, 1)[None].float() / 127.5 - 1
    if size is not None:
        scale = size / max(image.shape[-2:])
        shape = (max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale)))
        image = F.interpolate(image, size=shape, mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)
    return image  # (1, 3, H, W)

"""What a family needs to know about its data to build its networks: `DataInfo`.

Every field is optional, because data of different kinds fill different ones: images have channels
and a size, labelled data classes, two-domain data the domains' names and whether they are paired,
text a vocabulary and a window length. A run saves its `DataInfo` beside the weights (safetensors
metadata), so `genzoo.load` rebuilds the networks without the data; older runs, which saved only
channels, image_size, num_classes and num_images, load unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class DataInfo:
    channels: int | None = None  # image channels (1 grey, 3 RGB, 2 for 2-D points)
    image_size: int | None = None  # side of the square images
    num_classes: int | None = None  # label values 0..K-1 (of the source, for source/target data)
    num_images: int | None = None  # items in the training set (GLO learns one code per image)
    class_names: tuple[str, ...] | None = None  # names of the label values, when the dataset has them
    domains: tuple[str, ...] | None = None  # names of the domains behind batch keys a and b (or source, target)
    paired: bool | None = None  # two domains: whether a[i] and b[i] show the same thing (pix2pix) or not
    vocabulary: str | None = None  # text: the characters in token order; None with vocab_size 256: bytes
    vocab_size: int | None = None  # text: number of distinct tokens
    sequence_length: int | None = None  # text: tokens a model reads per window (a batch holds one more)
    num_types: int | None = None  # rendered objects: distinct objects (e.g. chairs) behind the images
    type_dim: int | None = None  # rendered objects: length of an object's type-parameter vector (batch key "type")
    focal: float | None = None  # rays: focal length of the cameras, in pixels at image_size
    near: float | None = None  # rays: distance along a ray where the scene begins
    far: float | None = None  # rays: distance along a ray where the scene ends
    camera_distance: float | None = None  # rays: distance of the cameras from the scene's centre (orbits for rendering)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, without the fields left unset."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataInfo:
        """The inverse of `as_dict` (lists back to tuples); keys of a newer genzoo are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: tuple(value) if isinstance(value, list) else value
                      for key, value in values.items() if key in known})

"""Posed images as rays, for scene models (NeRF): `chair-views` (one rendered chair) and `posed-images`
(a folder with a `transforms.json`, the layout of NeRF's Blender scenes).

Every pixel of every image is one item: batches are `origin` (B, 3), `direction` (B, 3) (unit length)
and `colour` (B, 3) in [0, 1], the ray through the pixel's centre in the camera convention of
`genzoo.data.cameras` (OpenGL / Blender: a pose is camera-to-world, the camera looks down -z).
Scenes are centred on the origin, z up. `DataInfo` carries what a scene model needs to render new
views: image_size, focal (pixels), near and far (distances along a ray that bound the scene) and
camera_distance (of the cameras from the centre: the radius of the orbits `genzoo render` draws).

- `chair-views`: one armchair (SCENE, a fixed type) from data.max_images cameras (default 100) at
  random azimuths and elevations in [10, 60] degrees, 3 units from the chair's centre, on white. The
  split decides the cameras: `train` and `test` draw them from different seeds, like the Blender
  scenes' 100 training and 200 test views. data.image_size: 64 by default.
- `posed-images`: data.root holds `transforms_<split>.json` (or `transforms.json`): `camera_angle_x`
  (horizontal field of view, radians) and `frames`, each with a `file_path` (relative to the root; a
  path without an extension means .png, as in the Blender scenes) and a 4 x 4 camera-to-world
  `transform_matrix`. Images must be square; RGBA is composited over white (as NeRF does for the
  Blender scenes); they are resized to data.image_size (default 64) and the focal length with them.
  Without `near`/`far` keys, near = d / 2 and far = 3 d / 2 for a mean camera distance d (2 and 6 for
  the Blender scenes, the values of the NeRF code).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from genzoo.config import DataConfig
from genzoo.data.cameras import focal_length, orbit_poses, pixel_rays
from genzoo.data.chair_render import CLASSES, PARAMETERS, render
from genzoo.data.info import DataInfo
from genzoo.errors import DataError
from genzoo.registry import DATASETS

DEFAULT_SIZE = 64
SCENE = {"seat_width": 0.6, "seat_depth": 0.5, "seat_height": 0.5, "seat_thickness": 0.6, "back_height": 0.7,
         "back_tilt": 0.5, "leg_thickness": 0.5, "arm_height": 0.5, "hue": 0.02, "frame_shade": 0.3}
SCENE_CLASS = "armchair"
SCENE_CENTRE = (0.0, 0.0, 0.5)  # the chair's centre in the renderer's frame: the origin of the rays' frame
SCENE_DISTANCE, SCENE_FOV = 3.0, math.radians(30)
SCENE_ELEVATIONS = (math.radians(10), math.radians(60))
SCENE_RADIUS = 1.1  # the chair lies within this distance of its centre: near = distance - radius, far = + radius
SPLIT_SEEDS = {"train": 0, "test": 1, "all": 2}


class RayData:
    """Posed images (N, 3, H, W) in [0, 1] with camera-to-world poses (N, 4, 4), served as rays."""

    def __init__(self, images: Tensor, poses: Tensor, focal: float, near: float, far: float, source: str,
                 notes: list[str] | None = None) -> None:
        self.images, self.poses = images.float(), poses.float()  # (N, 3, H, W), (N, 4, 4)
        self.focal, self.near, self.far = float(focal), float(near), float(far)
        self.source, self.notes = source, list(notes or [])
        size = images.shape[-1]
        origins, directions = pixel_rays(self.poses, size, size, self.focal)  # (N, H, W, 3) each
        self.origins, self.directions = origins.reshape(-1, 3), directions.reshape(-1, 3)  # (N H W, 3)
        self.colours = self.images.permute(0, 2, 3, 1).reshape(-1, 3)  # (N H W, 3)

    keys = ("origin", "direction", "colour")
    labels = None  # (`genzoo.data.base.conform` reads it; rays have no labels, and max_images is applied here)
    split: str | None = None  # the split these views really are; None: the data has no splits

    @property
    def info(self) -> DataInfo:
        distance = float(self.poses[:, :3, 3].norm(dim=-1).mean())
        return DataInfo(channels=3, image_size=self.images.shape[-1], num_images=len(self.images), focal=self.focal,
                        near=self.near, far=self.far, camera_distance=distance)

    @property
    def device(self) -> torch.device:
        return self.origins.device

    def __len__(self) -> int:
        return len(self.origins)

    def to(self, device: torch.device | str) -> RayData:
        self.origins, self.directions, self.colours = (t.to(device) for t in (self.origins, self.directions, self.colours))
        return self

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        return {"origin": self.origins[indices], "direction": self.directions[indices], "colour": self.colours[indices]}


class ChairScene(RayData):
    """`chair-views`: RayData of the SCENE chair, which can also render its true image from any camera."""

    def truth(self, poses: Tensor, size: int | None = None) -> Tensor:
        """True renders (n, 3, s, s) in [0, 1] of the scene from poses (n, 4, 4) of the rays' frame."""
        size = size or self.images.shape[-1]
        shifted = poses.clone().float().cpu()
        shifted[:, :3, 3] += torch.tensor(SCENE_CENTRE)  # back to the renderer's frame
        focal = self.focal * size / self.images.shape[-1]
        images, _ = render(scene_type().expand(len(poses), -1), shifted, size, focal)
        return images


def scene_type() -> Tensor:
    """The type vector (1, TYPE_DIM) of the chair-views scene."""
    parameters = torch.tensor([[SCENE[name] for name in PARAMETERS]])
    return torch.cat([parameters, F.one_hot(torch.tensor([CLASSES.index(SCENE_CLASS)]), len(CLASSES)).float()], 1)


def scene_poses(n: int, split: str) -> Tensor:
    """n random cameras (n, 4, 4) around the scene, in the rays' frame (centred on the chair)."""
    generator = torch.Generator().manual_seed(SPLIT_SEEDS[split])
    azimuth = torch.rand(n, generator=generator) * 2 * math.pi
    low, high = SCENE_ELEVATIONS
    elevation = low + (high - low) * torch.rand(n, generator=generator)
    return orbit_poses(azimuth, elevation, SCENE_DISTANCE)


@DATASETS.register("chair-views")
def chair_views(config: DataConfig) -> ChairScene:
    """One rendered armchair from 100 random posed views (rays, for NeRF); 64 px."""
    size, n = config.image_size or DEFAULT_SIZE, config.max_images or 100
    if config.channels not in (None, 3):
        raise DataError("chair-views renders RGB scenes for NeRF; leave data.channels unset.")
    poses = scene_poses(n, config.split)
    focal = focal_length(size, SCENE_FOV)
    shifted = poses.clone()
    shifted[:, :3, 3] += torch.tensor(SCENE_CENTRE)
    images, _ = render(scene_type().expand(n, -1), shifted, size, focal)
    scene = ChairScene(images, poses, focal, SCENE_DISTANCE - SCENE_RADIUS, SCENE_DISTANCE + SCENE_RADIUS,
                       source=f"chair-views: one armchair from {n} {config.split} cameras, {size} px")
    scene.split = config.split
    return scene


# ----------------------------------------------------------------------------- transforms.json folders


def _transforms_file(root: Path, split: str) -> Path:
    if not root.is_dir():
        raise DataError(f"data.root {str(root)!r} is not a folder; give the folder that holds transforms.json.")
    for name in (f"transforms_{split}.json", "transforms.json"):
        if (root / name).is_file():
            return root / name
    raise DataError(f"{str(root)!r} has no transforms_{split}.json or transforms.json; give a folder in the "
                    "NeRF (Blender) layout.")


def _read_frame_image(root: Path, path_text: object, number: int, where: str) -> np.ndarray:
    """Frame `number`'s image as float RGB (h, w, 3) in [0, 1], RGBA composited over white."""
    if not isinstance(path_text, str) or not path_text:
        raise DataError(f"frame {number} of {where} has no file_path string; give each frame its image's path.")
    path = root / path_text
    if not path.is_file() and not path.suffix:
        path = path.with_suffix(".png")
    if not path.is_file():
        raise DataError(f"frame {number} of {where} names {path_text!r}, which is not a file under {str(root)!r}; "
                        "fix file_path or add the image.")
    try:
        with Image.open(path) as image:
            image.load()
            rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as error:
        raise DataError(f"{str(path)!r} (frame {number} of {where}) is not a readable image "
                        f"({type(error).__name__}); replace it.") from None
    return rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])  # over white


def _matrix(value: object, number: int, where: str) -> Tensor:
    try:
        matrix = torch.tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        matrix = None
    if matrix is None or matrix.shape != (4, 4) or not torch.isfinite(matrix).all():
        raise DataError(f"frame {number} of {where} has a transform_matrix that is not a 4 x 4 matrix of finite "
                        "numbers; give each frame its camera-to-world matrix.")
    return matrix.float()


@DATASETS.register("posed-images")
def posed_images(config: DataConfig) -> RayData:
    """Posed images in the NeRF/Blender layout (data.root with transforms.json), as rays; 64 px."""
    if config.root is None:
        raise DataError("posed-images needs data.root, a folder with transforms.json and its images.")
    root = Path(config.root).expanduser()
    path = _transforms_file(root, config.split)
    where = str(path)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise DataError(f"{where!r} is not valid JSON; fix the file.") from None
    frames = meta.get("frames") if isinstance(meta, dict) else None
    angle = meta.get("camera_angle_x") if isinstance(meta, dict) else None
    if not isinstance(frames, list) or not frames:
        raise DataError(f"{where!r} has no list of frames; give it a 'frames' list as NeRF's transforms files have.")
    if not isinstance(angle, (int, float)) or isinstance(angle, bool) or not 0 < angle < math.pi:
        raise DataError(f"{where!r} has no camera_angle_x in (0, pi); add the horizontal field of view in radians.")
    frames = frames[: config.max_images] if config.max_images else frames
    size = config.image_size or DEFAULT_SIZE
    images, poses, width = [], [], 0
    for number, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise DataError(f"frame {number} of {where} is not a mapping; give file_path and transform_matrix.")
        poses.append(_matrix(frame.get("transform_matrix"), number, where))
        pixels = _read_frame_image(root, frame.get("file_path"), number, where)
        if pixels.shape[0] != pixels.shape[1]:
            raise DataError(f"frame {number} of {where} is {pixels.shape[1]} x {pixels.shape[0]} pixels; posed images must "
                            "be square.")
        width = width if number else pixels.shape[1]  # one camera: every frame of the first frame's size
        if pixels.shape[1] != width:
            raise DataError(f"frame {number} of {where} is {pixels.shape[1]} pixels wide but frame 0 is {width}; give "
                            "images of one size (one camera_angle_x).")
        image = torch.from_numpy(pixels).permute(2, 0, 1)[None]  # (1, 3, h, w)
        if image.shape[-1] != size:
            image = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        images.append(image.clamp(0, 1))
    poses_t = torch.stack(poses)  # (N, 4, 4)
    distance = float(poses_t[:, :3, 3].norm(dim=-1).mean())
    near, far = meta.get("near", distance / 2), meta.get("far", 1.5 * distance)
    if not (isinstance(near, (int, float)) and isinstance(far, (int, float)) and 0 <= near < far):
        raise DataError(f"{where!r} has near/far values that are not 0 <= near < far; fix or remove them.")
    focal = focal_length(width, angle) * size / width
    views = RayData(torch.cat(images), poses_t, focal, near, far,
                    source=f"posed-images: {len(frames)} views from {where}, {size} px")
    views.split = config.split if path.name == f"transforms_{config.split}.json" else None  # transforms.json: no splits
    return views

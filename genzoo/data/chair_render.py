"""A procedural chair renderer: chairs assembled from boxes, ray cast and shaded, vectorised in torch.

A chair's *type* is a vector of TYPE_DIM numbers: the PARAMETERS (each in [0, 1], mapped to a size,
an angle or a colour) followed by a one-hot of its CLASS, which decides its parts:
- stool: seat and four legs; chair: and a back; armchair: and two arms (rest and post each);
- swivel chair: seat, back, one central column on a cross-shaped base.
The chair stands on the floor z = 0, centred on the z axis, its front facing +y, about 1 unit tall.
Boxes may be tilted about their x axis (the back leans backwards by `back_tilt`).

Rendering (`render`): for each pixel the ray of `genzoo.data.cameras` (pixel centres; the module
documents the camera convention) is intersected with every box by the slab method in the box's own
frame (Kay & Kajiya 1986), the nearest hit wins, and its colour is Blinn-Phong shading under one
directional light fixed in the world (so a rotating camera sees consistent light, and the specular
highlight moves with the viewpoint, which NeRF's view-dependent colour has to model):
    colour = albedo (AMBIENT + DIFFUSE max(0, n.l)) + SPECULAR max(0, n.h)^SHININESS,  h = (l - d)/|l - d|.
Pixels that hit nothing are white (the background of Dosovitskiy et al.'s chairs and of NeRF's Blender
scenes). Each pixel averages supersample^2 rays on a regular sub-grid (anti-aliasing); the mask is the
fraction of them that hit the chair. Everything is a pure function of its inputs: deterministic.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.data.cameras import pixel_rays

PARAMETERS = ("seat_width", "seat_depth", "seat_height", "seat_thickness", "back_height", "back_tilt",
              "leg_thickness", "arm_height", "hue", "frame_shade")
CLASSES = ("stool", "chair", "armchair", "swivel chair")
TYPE_DIM = len(PARAMETERS) + len(CLASSES)
MAX_BOXES = 10  # seat, 4 legs (or column and base), back, 2 arm rests, 2 arm posts

RANGES = {  # what 0 and 1 of each parameter mean (lengths in units of about a chair's height)
    "seat_width": (0.55, 0.95), "seat_depth": (0.5, 0.85), "seat_height": (0.35, 0.6), "seat_thickness": (0.04, 0.12),
    "back_height": (0.3, 0.65), "back_tilt": (0.0, math.radians(22)), "leg_thickness": (0.04, 0.1),
    "arm_height": (0.14, 0.28), "hue": (0.0, 1.0), "frame_shade": (0.12, 0.55),
}
BACK_THICKNESS, ARM_THICKNESS, BASE_HEIGHT = 0.05, 0.06, 0.05
LIGHT = F.normalize(torch.tensor([0.45, 0.65, 1.0]), dim=0)  # towards the light, world space
AMBIENT, DIFFUSE, SPECULAR, SHININESS = 0.35, 0.65, 0.3, 24.0
BACKGROUND = 1.0  # white


@dataclass
class Boxes:
    """Oriented boxes of n chairs, K = MAX_BOXES each; a box of half-size 0 is absent."""

    centre: Tensor  # (n, K, 3)
    half: Tensor  # (n, K, 3) half-extents along the box's own axes
    rotation: Tensor  # (n, K, 3, 3) box-to-world rotation about the x axis (all chairs need; `cast` relies on it)
    colour: Tensor  # (n, K, 3) albedo in [0, 1]

    @property
    def present(self) -> Tensor:
        return (self.half > 0).all(-1)  # (n, K)

    @property
    def bounds(self) -> Tensor:
        """The axis-aligned world bounding box (n, 2, 3) (low, high corners) of each chair's boxes."""
        signs = torch.tensor([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=self.half.dtype,
                             device=self.half.device)  # (8, 3)
        corners = self.centre[:, :, None] + torch.einsum("nkab,nkcb->nkca", self.rotation, signs * self.half[:, :, None])
        present = self.present[:, :, None, None]  # (n, K, 1, 1); corners: (n, K, 8, 3)
        low = torch.where(present, corners, torch.full_like(corners, math.inf)).amin((1, 2))
        high = torch.where(present, corners, torch.full_like(corners, -math.inf)).amax((1, 2))
        return torch.stack([low, high], 1)  # (n, 2, 3)


# ----------------------------------------------------------------------------- types


def random_types(n: int, generator: torch.Generator | None = None, classes: Tensor | None = None) -> Tensor:
    """n chair types (n, TYPE_DIM): parameters uniform in [0, 1], classes uniform (or the given (n,) ones)."""
    parameters = torch.rand(n, len(PARAMETERS), generator=generator)  # (n, P)
    drawn = torch.randint(len(CLASSES), (n,), generator=generator)
    classes = drawn if classes is None else torch.as_tensor(classes).long().reshape(n)
    return torch.cat([parameters, F.one_hot(classes, len(CLASSES)).float()], dim=1)  # (n, TYPE_DIM)


def chair_types(seed: int, indices: Tensor | range) -> Tensor:
    """The types (n, TYPE_DIM) of chairs number `indices` of the collection drawn from `seed`: chair k
    depends only on (seed, k), so a larger collection starts with the same chairs."""
    rows = [random_types(1, torch.Generator().manual_seed(seed * 1_000_003 + int(k))) for k in indices]
    return torch.cat(rows) if rows else torch.empty(0, TYPE_DIM)


def type_class(types: Tensor) -> Tensor:
    """The class index (n,) of each type."""
    return types[:, len(PARAMETERS):].argmax(1)


def _value(types: Tensor, name: str) -> Tensor:
    low, high = RANGES[name]
    return low + (high - low) * types[:, PARAMETERS.index(name)]  # (n,)


def _rotation_x(angle: Tensor) -> Tensor:
    """Rotations (n, 3, 3) about the x axis; a positive angle turns +z towards -y (a back leaning back)."""
    cos, sin, zero, one = angle.cos(), angle.sin(), torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack([torch.stack([one, zero, zero], -1), torch.stack([zero, cos, -sin], -1),
                        torch.stack([zero, sin, cos], -1)], -2)


def _colour(hue: float, saturation: float, value: float) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(hue, saturation, value)


def chair_boxes(types: Tensor) -> Boxes:
    """The boxes (`Boxes`, K = MAX_BOXES per chair) of n chair types (n, TYPE_DIM)."""
    types = types.float()
    n, device = len(types), types.device
    kind = type_class(types)
    w, d, h = _value(types, "seat_width"), _value(types, "seat_depth"), _value(types, "seat_height")
    st, lt = _value(types, "seat_thickness"), _value(types, "leg_thickness")
    bh, tilt, ah = _value(types, "back_height"), _value(types, "back_tilt"), _value(types, "arm_height")
    zero = torch.zeros(n, device=device)
    centre = torch.zeros(n, MAX_BOXES, 3, device=device)
    half = torch.zeros(n, MAX_BOXES, 3, device=device)
    rotation = torch.eye(3, device=device).repeat(n, MAX_BOXES, 1, 1)

    def put(k: int, where: Tensor, c: tuple[Tensor, Tensor, Tensor], e: tuple[Tensor, Tensor, Tensor]) -> None:
        centre[where, k] = torch.stack(c, -1)[where]
        half[where, k] = torch.stack(e, -1)[where]

    legs, swivel = kind != 3, kind == 3
    leg_length = h - st
    put(0, kind >= 0, (zero, zero, h - st / 2), (w / 2, d / 2, st / 2))  # seat
    for k, (sx, sy) in enumerate(((1, 1), (-1, 1), (1, -1), (-1, -1)), start=1):  # four legs under the seat's corners
        put(k, legs, (sx * (w - lt) / 2, sy * (d - lt) / 2, leg_length / 2), (lt / 2, lt / 2, leg_length / 2))
    put(1, swivel, (zero, zero, leg_length / 2), (0.7 * lt, 0.7 * lt, leg_length / 2))  # column
    put(2, swivel, (zero, zero, zero + BASE_HEIGHT / 2), (0.4 * w, lt / 2, zero + BASE_HEIGHT / 2))  # base, across
    put(3, swivel, (zero, zero, zero + BASE_HEIGHT / 2), (lt / 2, 0.4 * w, zero + BASE_HEIGHT / 2))  # base, along
    back = kind != 0
    tilted = _rotation_x(tilt)  # (n, 3, 3)
    bottom = torch.stack([zero, -d / 2 + BACK_THICKNESS / 2, h], -1)  # (n, 3): the back's lower edge, on the seat
    back_centre = bottom + tilted[:, :, 2] * (bh / 2)[:, None]  # up the tilted back by half its height
    put(5, back, tuple(back_centre.unbind(-1)), (w / 2, zero + BACK_THICKNESS / 2, bh / 2))
    rotation[back, 5] = tilted[back]
    arms = kind == 2
    for k, sx in ((6, 1), (7, -1)):  # arm rests, along y at the seat's sides
        put(k, arms, (sx * (w - ARM_THICKNESS) / 2, zero, h + ah), (zero + ARM_THICKNESS / 2, 0.42 * d, zero + 0.02))
    for k, sx in ((8, 1), (9, -1)):  # arm posts, at the front
        put(k, arms, (sx * (w - ARM_THICKNESS) / 2, 0.36 * d, h + ah / 2), (zero + ARM_THICKNESS / 2, zero + ARM_THICKNESS / 2, ah / 2))

    hue, shade = types[:, PARAMETERS.index("hue")].tolist(), _value(types, "frame_shade").tolist()
    body = torch.tensor([_colour(x, 0.6, 0.85) for x in hue], device=device)  # (n, 3): seat, back, arm rests
    frame = torch.tensor([_colour(0.08, 0.45, s) for s in shade], device=device)  # (n, 3): legs, column, posts
    is_body = torch.tensor([1, 0, 0, 0, 0, 1, 1, 1, 0, 0], device=device, dtype=torch.bool)
    colour = torch.where(is_body[None, :, None], body[:, None], frame[:, None])  # (n, K, 3)
    return Boxes(centre, half, rotation, colour)


# ----------------------------------------------------------------------------- ray casting and shading


def _slabs(o: tuple[Tensor, ...], d: tuple[Tensor, ...], half: tuple[Tensor, ...]) -> tuple[Tensor, Tensor, Tensor]:
    """Entry distance, exit distance and entry axis (0, 1, 2) of rays o + t d through boxes |x_a| <= half_a,
    all in the box's frame, any broadcastable shapes. In slab a the ray is inside between
    t1 = (-h_a - o_a) / d_a and t2 = (h_a - o_a) / d_a; inside the box after the latest entry and before the
    earliest exit."""
    t_enter = t_exit = axis = None
    for a in range(3):
        inverse = 1.0 / torch.where(d[a].abs() < 1e-9, torch.full_like(d[a], 1e-9), d[a])  # parallel: a huge 1/d
        t1, t2 = (-half[a] - o[a]) * inverse, (half[a] - o[a]) * inverse
        near, far = torch.minimum(t1, t2), torch.maximum(t1, t2)
        if t_enter is None:
            t_enter, t_exit, axis = near, far, torch.zeros_like(near, dtype=torch.long)
        else:
            axis = torch.where(near > t_enter, a, axis)
            t_enter, t_exit = torch.maximum(t_enter, near), torch.minimum(t_exit, far)
    return t_enter, t_exit, axis


def _in_box_frame(v: tuple[Tensor, Tensor, Tensor], cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """R^T v for boxes turned about their x axis by R = R_x: (v_x, c v_y + s v_z, c v_z - s v_y)."""
    return v[0], cos * v[1] + sin * v[2], cos * v[2] - sin * v[1]


def cast(boxes: Boxes, origins: Tensor, directions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Nearest hit of each ray with the boxes of its chair: origins, directions (n, R, 3) (directions of
    unit length) -> distance t (n, R) (inf for a miss), world normal (n, R, 3) facing the ray, box index
    (n, R). Only rays that hit a chair's bounding box are tested against its boxes."""
    n, rays = origins.shape[:2]
    t = torch.full((n, rays), math.inf, device=origins.device)
    normal, box = torch.zeros(n, rays, 3, device=origins.device), torch.zeros(n, rays, dtype=torch.long, device=origins.device)
    low, high = boxes.bounds.unbind(1)  # (n, 3) each
    centre, extent = (low + high) / 2, (high - low) / 2
    o = tuple(origins[..., a] - centre[:, None, a] for a in range(3))  # (n, R) each
    enter, leave, _ = _slabs(o, directions.unbind(-1), tuple(extent[:, None, a] for a in range(3)))
    chair, ray = torch.nonzero((leave >= enter) & (leave > 0), as_tuple=True)  # the M rays that may hit: (M,) each
    if len(ray) == 0:
        return t, normal, box
    ray_origin, ray_direction = origins[chair, ray], directions[chair, ray]  # (M, 3)
    centre, half = boxes.centre[chair], boxes.half[chair]  # (M, K, 3)
    cos, sin = boxes.rotation[chair, :, 1, 1], boxes.rotation[chair, :, 2, 1]  # (M, K)
    o = _in_box_frame(tuple(ray_origin[:, None, a] - centre[..., a] for a in range(3)), cos, sin)  # (M, K) each
    d = _in_box_frame(tuple(ray_direction[:, None, a] for a in range(3)), cos, sin)
    t_enter, t_exit, axis = _slabs(o, d, half.unbind(-1))  # (M, K)
    hit = (t_exit >= t_enter) & (t_enter > 0) & (half > 0).all(-1)
    distance, nearest = torch.where(hit, t_enter, torch.full_like(t_enter, math.inf)).min(-1)  # (M,)
    pick = lambda v: v.gather(1, nearest[:, None]).squeeze(1)  # (M, K) -> (M,)  # noqa: E731
    axis, cos, sin = pick(axis), pick(cos), pick(sin)
    entry_d = torch.stack(_in_box_frame(ray_direction.unbind(-1), cos, sin), -1)  # d in the nearest box's frame: (M, 3)
    local = F.one_hot(axis, 3).float() * -torch.sign(entry_d.gather(1, axis[:, None]))  # the entry face's normal, box frame
    t[chair, ray], box[chair, ray] = distance, nearest
    normal[chair, ray] = torch.stack([local[:, 0], cos * local[:, 1] - sin * local[:, 2],
                                      sin * local[:, 1] + cos * local[:, 2]], -1)  # R n
    return t, normal, box


def shade(boxes: Boxes, directions: Tensor, t: Tensor, normal: Tensor, box: Tensor) -> Tensor:
    """Blinn-Phong colours (n, R, 3) in [0, 1] of the hits (white where t is inf)."""
    albedo = boxes.colour.gather(1, box[..., None].expand(-1, -1, 3))  # (n, R, 3)
    light = LIGHT.to(directions)
    halfway = F.normalize(light - directions, dim=-1)  # (n, R, 3)
    diffuse = (normal @ light).clamp(min=0)[..., None]  # (n, R, 1)
    specular = (normal * halfway).sum(-1, keepdim=True).clamp(min=0) ** SHININESS  # (n, R, 1)
    colour = (albedo * (AMBIENT + DIFFUSE * diffuse) + SPECULAR * specular).clamp(0, 1)
    return torch.where(torch.isinf(t)[..., None], torch.full_like(colour, BACKGROUND), colour)


def render(types: Tensor, poses: Tensor, size: int, focal: float, supersample: int = 2,
           pairs_per_chunk: int = 1 << 22) -> tuple[Tensor, Tensor]:
    """Images (n, 3, size, size) in [0, 1] and masks (n, 1, size, size) in [0, 1] (coverage) of chairs
    `types` (n, TYPE_DIM) seen by cameras `poses` (n, 4, 4) of focal length `focal` (pixels at `size`).
    A small job runs on one thread: its many small tensor operations gain nothing from more, and on a
    busy machine every operation would wait for the slowest thread."""
    if len(types) != len(poses):
        raise ValueError(f"{len(types)} chair types for {len(poses)} cameras")
    fine = size * supersample
    per_image = fine * fine
    chunk = max(1, pairs_per_chunk // (per_image * MAX_BOXES))  # images per chunk: about 4 M ray-box tests
    threads = torch.get_num_threads()
    if len(types) * per_image < 1 << 17:
        torch.set_num_threads(1)
    try:
        images, masks = [], []
        for start in range(0, len(types), chunk):
            boxes = chair_boxes(types[start : start + chunk])
            origins, directions = pixel_rays(poses[start : start + chunk], fine, fine, focal * supersample)  # (c, H', W', 3)
            origins, directions = origins.reshape(len(origins), -1, 3), directions.reshape(len(directions), -1, 3)
            t, normal, box = cast(boxes, origins, directions)
            colour = shade(boxes, directions, t, normal, box)  # (c, R, 3)
            colour = colour.reshape(-1, fine, fine, 3).permute(0, 3, 1, 2)  # (c, 3, H', W')
            covered = torch.isfinite(t).float().reshape(-1, 1, fine, fine)  # (c, 1, H', W')
            images.append(F.avg_pool2d(colour, supersample))
            masks.append(F.avg_pool2d(covered, supersample))
    finally:
        torch.set_num_threads(threads)
    return torch.cat(images).contiguous(), torch.cat(masks).contiguous()

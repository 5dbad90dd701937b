"""Pinhole cameras: poses on an orbit, the ray through each pixel, and the projection of a point.

One convention everywhere (the renderer, the datasets, NeRF), the one of NeRF's Blender scenes and
their `transforms.json` files:
- world: right-handed, z up;
- a pose is a camera-to-world matrix (4, 4) [R | t]: t is the camera's position, and the columns of R
  are the camera's axes in world coordinates; the camera looks down its -z axis, +x points right in
  the image and +y up;
- pixel (row i, column j) of an H x W image covers [j, j + 1) x [i, i + 1) and has its centre at
  u = j + 0.5, v = i + 0.5; the ray through that centre has the camera-space direction
  ((u - W/2) / f, -(v - H/2) / f, -1), normalised to unit length, so distances along a ray are metric;
- f, the focal length in pixels, is W / 2 / tan(fov_x / 2) (`camera_angle_x` of transforms.json);
- an orbit camera at azimuth phi (counter-clockwise from +x, seen from above), elevation theta (above
  the floor plane) and distance r from a target point sits at target + r (cos theta cos phi,
  cos theta sin phi, sin theta) and looks at the target, with world z up.
`project` is the inverse of `pixel_rays`: a point hit by the ray of a pixel projects to that pixel's
centre (a test checks it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def focal_length(width: int, fov_x: float) -> float:
    """Focal length in pixels of a camera `width` pixels wide with horizontal field of view fov_x (radians)."""
    return 0.5 * width / math.tan(0.5 * fov_x)


def look_at(position: Tensor, target: Tensor) -> Tensor:
    """Camera-to-world poses (B, 4, 4) of cameras at `position` (B, 3) looking at `target` (3,) or (B, 3),
    world z up. A camera looking straight up or down has no defined roll: keep elevations within (-90, 90)."""
    position = position.float()
    forward = F.normalize(target.to(position).expand_as(position) - position, dim=-1)  # (B, 3): the camera's -z
    up = torch.tensor([0.0, 0.0, 1.0], device=position.device).expand_as(forward)
    right = F.normalize(torch.cross(forward, up, dim=-1), dim=-1)  # (B, 3): the camera's +x
    true_up = torch.cross(right, forward, dim=-1)  # (B, 3): the camera's +y
    pose = torch.zeros(len(position), 4, 4, device=position.device)
    pose[:, :3, 0], pose[:, :3, 1], pose[:, :3, 2], pose[:, :3, 3] = right, true_up, -forward, position
    pose[:, 3, 3] = 1.0
    return pose  # (B, 4, 4)


def orbit_poses(azimuth: Tensor, elevation: Tensor, distance: float, target: Tensor | tuple = (0.0, 0.0, 0.0)) -> Tensor:
    """Poses (B, 4, 4) of orbit cameras at azimuth, elevation (B,) radians, `distance` from `target` (3,)."""
    azimuth, elevation = torch.as_tensor(azimuth).float().reshape(-1), torch.as_tensor(elevation).float().reshape(-1)
    target = torch.as_tensor(target, dtype=torch.float32, device=azimuth.device)
    offset = torch.stack([elevation.cos() * azimuth.cos(), elevation.cos() * azimuth.sin(), elevation.sin()], -1)  # (B, 3)
    return look_at(target + distance * offset, target)


def pixel_rays(poses: Tensor, height: int, width: int, focal: float) -> tuple[Tensor, Tensor]:
    """World-space origins and unit directions of the rays through every pixel centre: (B, H, W, 3) each."""
    rows = torch.arange(height, device=poses.device, dtype=torch.float32) + 0.5  # v of each row
    columns = torch.arange(width, device=poses.device, dtype=torch.float32) + 0.5  # u of each column
    v, u = torch.meshgrid(rows, columns, indexing="ij")  # (H, W)
    camera = torch.stack([(u - 0.5 * width) / focal, -(v - 0.5 * height) / focal, -torch.ones_like(u)], -1)  # (H, W, 3)
    directions = torch.einsum("hwc,brc->bhwr", camera, poses[:, :3, :3].float())  # R @ d: (B, H, W, 3)
    origins = poses[:, None, None, :3, 3].float().expand_as(directions)  # (B, H, W, 3)
    return origins, F.normalize(directions, dim=-1)


def project(points: Tensor, pose: Tensor, height: int, width: int, focal: float) -> Tensor:
    """Pixel coordinates (N, 2) as (u, v) = (column, row), continuous, of world points (N, 3) seen by the
    camera `pose` (4, 4); pixel (i, j) spans u in [j, j + 1), v in [i, i + 1). Points behind the camera
    give meaningless coordinates."""
    rotation, position = pose[:3, :3].float(), pose[:3, 3].float()
    camera = (points.float() - position) @ rotation  # R^T (X - t): (N, 3)
    depth = -camera[:, 2]  # distance in front of the camera along its -z axis
    u = 0.5 * width + focal * camera[:, 0] / depth
    v = 0.5 * height - focal * camera[:, 1] / depth
    return torch.stack([u, v], dim=-1)  # (N, 2)

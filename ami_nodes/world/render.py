"""A vectorised raycaster: one DDA ray per image column, numpy throughout.

Rendering is a pure function of (pose, movers' states, time), so the same code serves the live
stream and offline evaluation that renders views from arbitrary poses. Time matters only for
a noisy TV, whose texture is drawn from a generator seeded by (noise seed, time in ms).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ami_nodes.world.layout import FREE, NOISY_TV_ID, WALL_COLOURS, Layout
from ami_nodes.world.movers import MoverState

EYE_HEIGHT = 0.5          # metres; walls are 1 m tall
NEAR_CLIP = 0.05          # metres; movers closer than this are not drawn
FLOOR_SHADES = np.array([[92, 84, 74], [120, 112, 100]], dtype=np.float32)
CEILING_SHADE = np.array([150, 170, 195], dtype=np.float32)
_FAR = 1e30               # stands in for an infinite step length, without inf * 0 = nan
NOISY_TV_BLOCKS = 4       # the screen shows a NOISY_TV_BLOCKS x NOISY_TV_BLOCKS grid per wall cell


@dataclass(frozen=True)
class CameraPose:
    """Position (x, y) in metres, heading `yaw` (radians, counter-clockwise from +x), hop height z."""

    x: float
    y: float
    yaw: float
    z: float = 0.0


@dataclass(frozen=True)
class _WallHits:
    distance: np.ndarray   # perpendicular distance to the wall, per column
    wall_id: np.ndarray    # wall colour id hit, per column
    x_face: np.ndarray     # True where the ray hit a face perpendicular to x
    along: np.ndarray      # where on the face the ray hit, in [0, 1)


def _fog(distance: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + 0.12 * distance)


class Raycaster:
    """Renders a `Layout` and its movers as a pinhole camera of `width` x `height` pixels."""

    def __init__(self, layout: Layout, width: int, height: int, fov_deg: float = 66.0,
                 noise_seed: int = 0) -> None:
        if width < 2 or height < 2:
            raise ValueError(f'image size {width}x{height} is too small')
        self._layout = layout
        self._width = width
        self._height = height
        self._half_fov_tan = math.tan(math.radians(fov_deg) / 2.0)
        self._focal = (width / 2.0) / self._half_fov_tan
        self._camera_x = (2.0 * (np.arange(width) + 0.5) / width - 1.0) * self._half_fov_tan
        self._noise_seed = noise_seed
        self._wall_rgb = np.zeros((NOISY_TV_ID + 1, 3), dtype=np.float32)
        for colour_id, (_, rgb) in WALL_COLOURS.items():
            self._wall_rgb[colour_id] = rgb

    @property
    def centre_column(self) -> int:
        return self._width // 2

    def render(self, pose: CameraPose, movers: list[MoverState], time: float = 0.0) -> np.ndarray:
        """The view from `pose` at `time` as an (height, width, 3) uint8 RGB image."""
        self._layout.require_free(pose.x, pose.y)
        dir_x, dir_y = self._ray_directions(pose, self._camera_x)
        hits = self._cast(pose, dir_x, dir_y)
        eye = EYE_HEIGHT + pose.z
        image = self._floor_and_ceiling(pose, dir_x, dir_y, eye)
        self._draw_walls(image, hits, eye, time)
        depth = hits.distance.copy()
        for mover in self._far_to_near(pose, movers):
            self._draw_mover(image, depth, pose, mover, eye)
        return image.astype(np.uint8)

    def centre_entity(self, pose: CameraPose, movers: list[MoverState]) -> int:
        """Id of the nearest wall colour or mover in the centre column of `render`'s image."""
        self._layout.require_free(pose.x, pose.y)
        column = self._camera_x[self.centre_column:self.centre_column + 1]
        hits = self._cast(pose, *self._ray_directions(pose, column))
        nearest_id, nearest = int(hits.wall_id[0]), float(hits.distance[0])
        for mover in movers:
            depth, centre, half_width = self._project(pose, mover)
            covers = abs(self.centre_column + 0.5 - centre) < half_width
            if depth > NEAR_CLIP and covers and depth < nearest:
                nearest_id, nearest = mover.entity_id, depth
        return nearest_id

    def noisy_tv_fraction(self, pose: CameraPose) -> float:
        """Fraction of image columns whose nearest wall is the noisy TV (movers ignored)."""
        self._layout.require_free(pose.x, pose.y)
        hits = self._cast(pose, *self._ray_directions(pose, self._camera_x))
        return float(np.mean(hits.wall_id == NOISY_TV_ID))

    @staticmethod
    def _ray_directions(pose: CameraPose, camera_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unnormalised ray directions: heading plus a sideways part, so DDA gives perpendicular distance."""
        forward_x, forward_y = math.cos(pose.yaw), math.sin(pose.yaw)
        right_x, right_y = forward_y, -forward_x
        return forward_x + right_x * camera_x, forward_y + right_y * camera_x

    def _cast(self, pose: CameraPose, dir_x: np.ndarray, dir_y: np.ndarray) -> _WallHits:
        """Grid DDA for all rays at once; the closed border guarantees every ray stops."""
        walls = self._layout.walls
        cell_x = np.full(dir_x.shape, math.floor(pose.x), dtype=np.int64)
        cell_y = np.full(dir_y.shape, math.floor(pose.y), dtype=np.int64)
        with np.errstate(divide='ignore'):
            step_len_x = np.where(dir_x == 0.0, _FAR, np.abs(1.0 / dir_x))
            step_len_y = np.where(dir_y == 0.0, _FAR, np.abs(1.0 / dir_y))
        step_x = np.where(dir_x < 0.0, -1, 1)
        step_y = np.where(dir_y < 0.0, -1, 1)
        next_x = np.where(dir_x < 0.0, pose.x - cell_x, cell_x + 1.0 - pose.x) * step_len_x
        next_y = np.where(dir_y < 0.0, pose.y - cell_y, cell_y + 1.0 - pose.y) * step_len_y
        x_face = np.zeros(dir_x.shape, dtype=bool)
        active = np.ones(dir_x.shape, dtype=bool)
        for _ in range(2 * self._layout.size + 2):
            go_x = active & (next_x < next_y)
            go_y = active & ~go_x
            cell_x += np.where(go_x, step_x, 0)
            next_x += np.where(go_x, step_len_x, 0.0)
            cell_y += np.where(go_y, step_y, 0)
            next_y += np.where(go_y, step_len_y, 0.0)
            x_face = np.where(active, go_x, x_face)
            active &= walls[cell_x, cell_y] == FREE
            if not active.any():
                break
        distance = np.where(x_face, next_x - step_len_x, next_y - step_len_y)
        along = np.where(x_face, pose.y + distance * dir_y, pose.x + distance * dir_x) % 1.0
        return _WallHits(distance, walls[cell_x, cell_y].astype(np.int64), x_face, along)

    def _floor_and_ceiling(self, pose: CameraPose, dir_x: np.ndarray, dir_y: np.ndarray,
                           eye: float) -> np.ndarray:
        """A checkered floor (so translation shows even far from walls) and a plain ceiling."""
        half = self._height // 2
        image = np.empty((self._height, self._width, 3), dtype=np.float32)
        rows_up = half - (np.arange(half) + 0.5)
        ceiling_distance = self._focal * (1.0 - eye) / rows_up
        image[:half] = CEILING_SHADE * _fog(ceiling_distance)[:, None, None]
        rows_down = np.arange(half, self._height) + 0.5 - self._height / 2.0
        floor_distance = (self._focal * eye / rows_down)[:, None]
        world_x = pose.x + floor_distance * dir_x[None, :]
        world_y = pose.y + floor_distance * dir_y[None, :]
        checker = (np.floor(world_x).astype(np.int64) + np.floor(world_y).astype(np.int64)) & 1
        image[half:] = FLOOR_SHADES[checker] * _fog(floor_distance)[..., None]
        return image

    def _draw_walls(self, image: np.ndarray, hits: _WallHits, eye: float, time: float) -> None:
        top = self._height / 2.0 - self._focal * (1.0 - eye) / hits.distance
        bottom = self._height / 2.0 + self._focal * eye / hits.distance
        row_centres = (np.arange(self._height) + 0.5)[:, None]
        covered = (row_centres >= top[None, :]) & (row_centres < bottom[None, :])
        edge = (hits.along < 0.04) | (hits.along > 0.96)
        shade = _fog(hits.distance) * np.where(hits.x_face, 1.0, 0.75) * np.where(edge, 0.55, 1.0)
        colour = self._wall_rgb[hits.wall_id] * shade[:, None]
        np.copyto(image, np.broadcast_to(colour[None, :, :], image.shape), where=covered[..., None])
        screen = np.flatnonzero(hits.wall_id == NOISY_TV_ID)
        if screen.size:
            self._draw_noise(image, screen, covered, top, bottom, hits, time)

    def _draw_noise(self, image: np.ndarray, columns: np.ndarray, covered: np.ndarray, top: np.ndarray,
                    bottom: np.ndarray, hits: _WallHits, time: float) -> None:
        """The noisy TV: random colour blocks and a random brightness, new every millisecond of time."""
        rng = np.random.default_rng((self._noise_seed, int(round(time * 1000.0))))
        blocks = rng.integers(0, 256, size=(NOISY_TV_BLOCKS, NOISY_TV_BLOCKS, 3)).astype(np.float32)
        brightness = rng.uniform(0.3, 1.0)
        rows, cols = np.nonzero(covered[:, columns])
        cols = columns[cols]
        v = (rows + 0.5 - top[cols]) / (bottom[cols] - top[cols])
        u_index = np.minimum((hits.along[cols] * NOISY_TV_BLOCKS).astype(np.int64), NOISY_TV_BLOCKS - 1)
        v_index = np.clip((v * NOISY_TV_BLOCKS).astype(np.int64), 0, NOISY_TV_BLOCKS - 1)
        fog = _fog(hits.distance[cols])[:, None]
        image[rows, cols] = blocks[u_index, v_index] * (brightness * fog)

    def _project(self, pose: CameraPose, mover: MoverState) -> tuple[float, float, float]:
        """Mover's depth along the heading, its centre column (pixel units) and half width in pixels."""
        rel_x, rel_y = mover.x - pose.x, mover.y - pose.y
        forward_x, forward_y = math.cos(pose.yaw), math.sin(pose.yaw)
        depth = rel_x * forward_x + rel_y * forward_y
        if depth <= NEAR_CLIP:
            return depth, 0.0, 0.0
        lateral = rel_x * forward_y - rel_y * forward_x
        centre = self._width / 2.0 * (1.0 + lateral / (depth * self._half_fov_tan))
        return depth, centre, mover.radius * self._focal / depth

    def _far_to_near(self, pose: CameraPose, movers: list[MoverState]) -> list[MoverState]:
        return sorted(movers, key=lambda m: -math.hypot(m.x - pose.x, m.y - pose.y))

    def _draw_mover(self, image: np.ndarray, depth_buffer: np.ndarray, pose: CameraPose,
                    mover: MoverState, eye: float) -> None:
        """A shaded pillar, drawn only in columns where nothing nearer was drawn."""
        depth, centre, half_width = self._project(pose, mover)
        if depth <= NEAR_CLIP:
            return
        first = max(0, math.floor(centre - half_width))
        last = min(self._width, math.ceil(centre + half_width) + 1)
        columns = np.arange(first, last)
        offset = (columns + 0.5 - centre) / half_width
        columns = columns[(np.abs(offset) < 1.0) & (depth < depth_buffer[columns])]
        if columns.size == 0:
            return
        offset = (columns + 0.5 - centre) / half_width
        top = self._height / 2.0 - self._focal * (mover.bottom + mover.height - eye) / depth
        bottom = self._height / 2.0 - self._focal * (mover.bottom - eye) / depth
        rows = np.arange(max(0, math.floor(top)), min(self._height, math.ceil(bottom)))
        rows = rows[(rows + 0.5 >= top) & (rows + 0.5 < bottom)]
        shade = (0.5 + 0.5 * np.sqrt(1.0 - offset ** 2)) * _fog(np.array(depth))
        depth_buffer[columns] = depth
        if rows.size:
            image[rows[:, None], columns[None, :]] = np.array(mover.colour, np.float32) * shade[None, :, None]

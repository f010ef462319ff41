"""The world's clock: ticks the simulation at a fixed rate and publishes each frame and its state.

Ticks follow an absolute schedule (sleep the remainder, no drift); the simulation always steps
by exactly 1/fps so a run is reproducible whatever the wall clock did.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from ami_nodes.world.sim import World
from ami_nodes.world.stream_server import encode_jpeg


class WorldRunner:
    """Steps `world` under `lock`, renders and encodes outside it, hands frames to `publish`."""

    def __init__(self, world: World, lock: threading.Lock, publish: Callable[[bytes, int], None],
                 trajectory_log: IO[str] | None = None,
                 on_state: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._world = world
        self._lock = lock
        self._publish = publish
        self._trajectory_log = trajectory_log
        self._on_state = on_state    # e.g. the target's touch reporter; called once per tick
        self._period = 1.0 / world.config.fps
        self._frame_index = -1
        self._late_ticks = 0
        self._noisy_tv_frames = 0
        self._state: dict[str, Any] = {}
        self._state_lock = threading.Lock()

    @property
    def frame_index(self) -> int:
        """Index of the latest frame published (-1 before the first)."""
        return self._frame_index

    @property
    def late_ticks(self) -> int:
        """Ticks that started more than a period behind schedule (the schedule then restarts)."""
        return self._late_ticks

    def state(self) -> dict[str, Any]:
        """Ground truth as of the latest frame, JSON-ready."""
        with self._state_lock:
            return dict(self._state)

    def tick(self) -> None:
        """One world tick: step, snapshot, render, encode, publish, log."""
        with self._lock:
            if self._frame_index >= 0:
                self._world.step(self._period)
            pose, sim_time = self._world.pose, self._world.time
            state = self._snapshot(self._frame_index + 1)
        frame = self._world.render(pose, time=sim_time)   # pure in (pose, time): no lock needed
        self._frame_index += 1
        with self._state_lock:
            self._state = state
        self._publish(encode_jpeg(frame), self._frame_index)
        if self._on_state is not None:
            self._on_state(state)
        if self._trajectory_log is not None:
            self._trajectory_log.write(json.dumps(_trajectory_line(state)) + '\n')

    def run(self, stop: threading.Event, duration: float = 0.0) -> None:
        """Tick at fps until `stop` is set or `duration` seconds (0 = forever) have passed."""
        deadline = time.monotonic() + duration if duration > 0.0 else math.inf
        next_tick = time.monotonic() + (self._period if self._frame_index >= 0 else 0.0)
        while not stop.wait(max(0.0, next_tick - time.monotonic())):
            if time.monotonic() >= deadline:
                break
            self.tick()
            next_tick += self._period
            behind = time.monotonic() - next_tick
            if behind > self._period:
                self._late_ticks += 1
                next_tick += math.floor(behind / self._period) * self._period

    def _snapshot(self, frame_index: int) -> dict[str, Any]:
        world = self._world
        pose = world.pose
        in_view = world.in_view()
        visited = world.cells_visited
        noisy_tv_in_view = world.noisy_tv_in_view()
        self._noisy_tv_frames += noisy_tv_in_view
        return {
            'time': world.time,
            'wall_time': time.time(),
            'frame': frame_index,
            'pose': {'x': pose.x, 'y': pose.y, 'yaw': pose.yaw, 'z': pose.z},
            'velocity': world.velocity._asdict(),   # body frame, over the last step
            'coverage': world.coverage(),
            'cells_visited': len(visited),
            'free_cells': world.free_cell_count,
            'visited': sorted(visited),
            'in_view': in_view,
            'in_view_name': world.entity_name(in_view),
            'held_inputs': world.held_inputs(),
            'jumps': world.jumps,
            'touches': world.touches,
            'layout': world.config.layout,
            'noisy_tv': world.config.noisy_tv,
            'noisy_tv_in_view': noisy_tv_in_view,
            'noisy_tv_frames': self._noisy_tv_frames,   # frames 0..frame with the noisy TV in view
        }


def _trajectory_line(state: dict[str, Any]) -> dict[str, Any]:
    """One JSONL record of the trajectory log."""
    pose = state['pose']
    return {'t': state['wall_time'], 'frame': state['frame'], 'x': pose['x'], 'y': pose['y'],
            'yaw': pose['yaw'], 'z': pose['z'], 'in_view': state['in_view'], 'coverage': state['coverage']}

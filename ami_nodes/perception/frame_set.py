"""Seed 000's loss-prioritised frame set: a fixed number of transitions the encoder finds hard.

A new transition enters when the set has room or when its loss beats the lowest loss held,
whose slot it takes; replaying refreshes the losses of what was replayed. Easy frames leave,
hard ones stay, so replay batches stay diverse instead of being the last few similar frames.
Each entry is (frame_{t-1}, frame_t, action_{t-1}) at the encoder's input size, uint8, with
the dead-reckoned poses of both frames and frame_t's number when known (the odometry term);
poses belong to one odometry session and are not saved: a resumed set starts without them.
`policy='fifo'` instead always replaces the oldest entry (a plain ring buffer), the baseline
the prioritised rule is measured against; `policy='minred'` always admits the new entry and
evicts the most redundant one, the entry whose embedding is most similar (cosine) to its
nearest neighbour in the set (MinRed, Purushwalkam et al. 2022). See docs/perception.md.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ami_nodes.action_space import ACTION_DIMS

UNKNOWN_ACTION = -1
REPLAY_POLICIES = ('prioritised', 'fifo', 'minred')


class FrameSet:
    """Fixed-capacity transitions with a loss each; `sample` returns indices and arrays."""

    def __init__(self, capacity: int, image_size: int, seed: int = 0, policy: str = 'prioritised') -> None:
        if policy not in REPLAY_POLICIES:
            raise ValueError(f'replay policy {policy!r}: expected one of {REPLAY_POLICIES}')
        self.capacity = capacity
        self.policy = policy
        self._offered = 0
        self.prev_frames = np.zeros((capacity, image_size, image_size, 3), np.uint8)
        self.frames = np.zeros_like(self.prev_frames)
        self.actions = np.full((capacity, len(ACTION_DIMS)), UNKNOWN_ACTION, np.int64)
        self.losses = np.zeros(capacity, np.float64)
        self.poses = np.full((capacity, 2, 3), np.nan)   # (prev, current) x (x, y, yaw); NaN unknown
        self.ticks = np.zeros(capacity, np.int64)         # frame_t's number in the stream
        self.embeddings: np.ndarray | None = None   # (capacity, D) unit rows, for minred
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def offer(self, prev_frame: np.ndarray, frame: np.ndarray, action: Sequence[int] | None, loss: float,
              embedding: np.ndarray | None = None, poses: np.ndarray | None = None, tick: int = 0) -> bool:
        """Store the transition if there is room or the policy makes room for it (prioritised:
        it is harder than the easiest one held). `embedding`: its features, for minred; `poses`:
        (2, 3) dead-reckoned poses of prev_frame and frame (None: unknown); `tick`: frame's number."""
        self._offered += 1
        if self.size < self.capacity:
            slot = self.size
            self.size += 1
        elif self.policy == 'fifo':
            slot = (self._offered - 1) % self.capacity
        elif self.policy == 'minred':
            slot = self._most_redundant()
        else:
            slot = int(np.argmin(self.losses))
            if loss <= self.losses[slot]:
                return False
        self.prev_frames[slot], self.frames[slot] = prev_frame, frame
        self.actions[slot] = UNKNOWN_ACTION if action is None else action
        self.losses[slot] = loss
        self.poses[slot] = np.nan if poses is None else poses
        self.ticks[slot] = tick
        if embedding is not None:
            self._set_embeddings(np.array([slot]), embedding[None])
        return True

    def _set_embeddings(self, indices: np.ndarray, embeddings: np.ndarray) -> None:
        if self.embeddings is None:
            self.embeddings = np.zeros((self.capacity, embeddings.shape[1]), np.float32)
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        self.embeddings[indices] = embeddings / np.maximum(norms, 1e-8)

    def _most_redundant(self) -> int:
        """The entry with the highest cosine similarity to its nearest neighbour."""
        if self.embeddings is None:
            return int(self.rng.integers(self.size))
        similarity = self.embeddings @ self.embeddings.T
        np.fill_diagonal(similarity, -np.inf)
        return int(np.argmax(similarity.max(axis=1)))

    def sample(self, count: int) -> np.ndarray:
        """Indices of `count` distinct entries, uniformly."""
        return self.rng.choice(self.size, size=min(count, self.size), replace=False)

    def update_losses(self, indices: np.ndarray, losses: np.ndarray,
                      embeddings: np.ndarray | None = None) -> None:
        self.losses[indices] = losses
        if embeddings is not None:
            self._set_embeddings(indices, embeddings)

    def state_dict(self) -> dict[str, torch.Tensor | int]:
        n = self.size
        return {'size': n, 'prev_frames': torch.from_numpy(self.prev_frames[:n].copy()),
                'frames': torch.from_numpy(self.frames[:n].copy()),
                'actions': torch.from_numpy(self.actions[:n].copy()),
                'losses': torch.from_numpy(self.losses[:n].copy()),
                **({'embeddings': torch.from_numpy(self.embeddings[:n].copy())}
                   if self.embeddings is not None else {})}

    def load_state_dict(self, state: dict[str, torch.Tensor | int]) -> None:
        n = min(int(state['size']), self.capacity)
        self.size = n
        self.prev_frames[:n] = state['prev_frames'][:n].numpy()
        self.frames[:n] = state['frames'][:n].numpy()
        self.actions[:n] = state['actions'][:n].numpy()
        self.losses[:n] = state['losses'][:n].numpy()
        self.poses[:] = np.nan  # another odometry session's poses: not comparable with this one's
        if 'embeddings' in state and n:
            self._set_embeddings(np.arange(n), state['embeddings'][:n].numpy())

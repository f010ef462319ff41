"""The encoder that trains itself on the live stream, one frame at a time (seed 003).

Per frame: forward -> publish the detached features -> auxiliary loss against the previous step
(with the default `predictive_gradient: context` the previous frame is encoded again with
gradients and the live forward needs none; with `target` the live forward carries them) ->
backward -> optimizer step. Training happens every `train_every` frames
(fixed, or chosen by `BudgetController` to fit `budget_s`); the other frames run forward only.
Nothing here imports rclpy: the ROS node wraps this class.
"""
from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from time import perf_counter
from typing import Any

import cv2
import numpy as np
import torch

from ami_nodes.action_space import ACTION_DIMS, action_magnitude, one_hot
from ami_nodes.perception.aux_losses import ACTION_ONE_HOT_DIM, AuxLoss, AuxLossConfig
from ami_nodes.perception.budget import BudgetController
from ami_nodes.perception.encoder import Encoder, frame_to_tensor, frames_to_batch
from ami_nodes.perception.frame_set import REPLAY_POLICIES, UNKNOWN_ACTION, FrameSet
from ami_nodes.perception.objectives import AUX, OBJECTIVES, BatchObjective, ObjectiveConfig
from ami_nodes.perception.preview import render_preview
from ami_nodes.perception.stats import feature_summary
from ami_nodes.settings import assign, setting

#: train_every that means "never": a frozen encoder still runs the same code path.
FROZEN_TRAIN_EVERY = 2**62
#: The pose of a frame whose dead-reckoned pose is not known.
UNKNOWN_POSE = np.full(3, np.nan)


@dataclass
class OnlinePerceptionConfig:
    """Everything a ROS parameter would set. `budget_s` > 0 turns on automatic train_every;
    `ema_decay` > 0 publishes an exponential moving average of the encoder instead of the
    encoder itself (steadier features for the policy, one extra forward per frame).
    `replay_batch` > 0 adds that many transitions from a loss-prioritised frame set of
    `frame_set_size` (seed 000) to every training step, so the anti-collapse terms see a
    diverse batch of live features rather than one live vector against its recent past.
    `objective` picks the loss: `aux` (the terms in `aux`) or a batch objective of
    objectives.py over the live transition plus `replay_batch` replayed ones, augmented.
    `replay_policy` picks which transition the full frame set gives up (frame_set.py)."""

    image_size: int = setting(84, 'Side of the square rgb8 input image (camera '
                              'image_width/height)', 8, 4096)
    feature_dim: int = setting(64, 'Size of the published feature vector', 1, 65536)
    learning_rate: float = setting(3e-4, 'Adam learning rate of encoder and predictor (the '
                                   'start value when lr_decay_steps > 0)', 0.0, 1.0, live=True)
    lr_decay_steps: int = setting(250, 'Keep learning_rate for this many training steps, then '
                                  'decay it as 1 / sqrt(steps) down to min_learning_rate (0: '
                                  'constant)', 0, 10**9, live=True)
    min_learning_rate: float = setting(1e-4, 'Floor of the decayed learning rate: a life that '
                                       'never ends keeps learning', 0.0, 1.0, live=True)
    train_every: int = setting(1, 'Train on every K-th frame (the start value in automatic '
                               'mode)', 1, 1000, live=True)
    budget_s: float = 0.0
    max_train_every: int = setting(64, 'Largest K the automatic mode may choose', 1, 100000)
    ema_decay: float = setting(0.0, 'Publish an EMA copy of the encoder (0 disables)',
                               0.0, 0.99999)
    history_size: int = setting(64, 'Recent feature vectors kept for the anti-collapse terms',
                                2, 100000)
    stats_window: int = 256
    replay_batch: int = setting(16, "Frames replayed from seed 000's loss-prioritised frame "
                                'set in each training step, after the features went out (0: '
                                'live frame only)', 0, 4096)
    frame_set_size: int = setting(256, 'Frames kept in the loss-prioritised frame set',
                                  1, 1000000)
    seed: int = setting(0, 'Seed of the initial encoder weights', 0, 2**31 - 1)
    objective: str = setting(AUX, "Training loss: 'aux' (the loss_* terms on the live frame) or "
                             'a batch objective over replayed frames with augmentations '
                             '(docs/perception.md)', choices=OBJECTIVES)
    replay_policy: str = setting('prioritised', 'Which transition a full frame set gives up: '
                                 "the lowest-loss one (seed 000), the oldest ('fifo') or the "
                                 "most redundant ('minred')", choices=REPLAY_POLICIES)
    aux: AuxLossConfig = field(default_factory=AuxLossConfig)
    batch_objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)


@dataclass
class PerceptionStep:
    """What one frame produced."""

    features: np.ndarray  # float32 (D,), detached: what gets published
    losses: dict[str, float]  # unweighted terms plus 'total'; empty on the very first frame
    trained: bool
    step_time_s: float
    train_every: int


class OnlinePerception:
    """Encoder + predictor + their optimizer + the short memory the losses need."""

    def __init__(self, config: OnlinePerceptionConfig | None = None, device: torch.device | str = 'cpu') -> None:
        self.config = config or OnlinePerceptionConfig()
        self.device = torch.device(device)
        cfg = self.config
        if cfg.objective not in OBJECTIVES or cfg.replay_policy not in REPLAY_POLICIES:
            raise ValueError(f'objective {cfg.objective!r} / replay_policy {cfg.replay_policy!r}: '
                             f'expected one of {OBJECTIVES} / {REPLAY_POLICIES}')
        if cfg.objective != AUX and cfg.replay_batch < 2:
            raise ValueError(f'objective {cfg.objective!r} trains on a batch: replay_batch must be >= 2')
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.encoder = Encoder(cfg.image_size, cfg.feature_dim).to(self.device)
            self.aux = AuxLoss(cfg.feature_dim, cfg.aux).to(self.device)
            self.objective = (BatchObjective(cfg.objective, cfg.feature_dim, cfg.batch_objective,
                                             cfg.seed).to(self.device)
                              if cfg.objective != AUX else None)
        self.ema_encoder = self._make_ema() if cfg.ema_decay > 0.0 else None
        heads = self.aux if self.objective is None else self.objective
        self.optimizer = torch.optim.Adam(
            list(self.encoder.parameters()) + list(heads.parameters()), lr=cfg.learning_rate)
        self.budget = (BudgetController(cfg.budget_s, cfg.train_every, max_every=cfg.max_train_every)
                       if cfg.budget_s > 0.0 else None)
        self.train_every = cfg.train_every
        self.frames = 0
        self.train_steps = 0
        self._since_train = 0
        self._history: deque[torch.Tensor] = deque(maxlen=cfg.history_size)
        self._published: deque[np.ndarray] = deque(maxlen=cfg.stats_window)
        self._last_target: np.ndarray | None = None
        self._last_prediction: np.ndarray | None = None
        self._prev_frame: np.ndarray | None = None
        self._prev_pose = UNKNOWN_POSE
        self.frame_set = (FrameSet(cfg.frame_set_size, cfg.image_size, cfg.seed, cfg.replay_policy)
                          if cfg.replay_batch > 0 else None)

    def step(self, frame: np.ndarray, prev_action: Sequence[int] | None = None,
             on_features: Callable[[np.ndarray], None] | None = None,
             pose: Sequence[float] | None = None) -> PerceptionStep:
        """Encode `frame`; train on it if due. `prev_action` is the action taken since the last
        frame; None (unknown) predicts with a zero action and leaves coherence ungated. `pose`
        is the robot's dead-reckoned (x, y, yaw) at this frame, for the odometry term (None:
        unknown; the term then skips this frame).

        The published features are the forward pass's output, which the optimizer step cannot
        change; `on_features` receives them before the loss, backward pass and replay run, so
        whoever waits for them waits for the forward pass only.
        """
        start = perf_counter()
        frame = self._resized(frame)
        pose_now = UNKNOWN_POSE if pose is None else np.asarray(pose, np.float64)
        images = frame_to_tensor(frame, self.device)
        self._since_train += 1
        has_prev = len(self._history) > 0
        trained = has_prev and self._since_train >= self.train_every
        with torch.set_grad_enabled(trained and self.objective is None and not self.config.aux.context_rows_train):
            features = self.encoder(images)
        live = features.detach()
        published = live
        if self.ema_encoder is not None:
            with torch.no_grad():
                published = self.ema_encoder(images)
        out = published[0].cpu().numpy().astype(np.float32)
        if on_features is not None:
            on_features(out)
        if trained:
            self._since_train = 0
            total, terms = (self._loss(features, images, frame, prev_action, training=True, pose=pose_now)
                            if self.objective is None else self._batch_loss(frame, prev_action))
            trained = total is not None
        if trained:
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            self._set_learning_rate()
            self.optimizer.step()
            self.train_steps += 1
            if self.ema_encoder is not None:
                self._update_ema()
        elif self.objective is not None:
            total, terms = None, {}
        else:
            with torch.no_grad():
                total, terms = (self._loss(live, images, frame, prev_action, training=False, pose=pose_now)
                                if has_prev else (None, {}))
        self._history.append(live)
        self._prev_frame = frame
        self._prev_pose = pose_now
        self._published.append(out)
        self.frames += 1
        losses = {name: float(value) for name, value in terms.items()}
        if total is not None:
            losses['total'] = float(total.detach())
        elapsed = perf_counter() - start
        if self.budget is not None:
            self.train_every = self.budget.observe(elapsed, trained)
        return PerceptionStep(out, losses, trained, elapsed, self.train_every)

    def _loss(self, features: torch.Tensor, images: torch.Tensor, frame: np.ndarray,
              prev_action: Sequence[int] | None, training: bool, pose: np.ndarray = UNKNOWN_POSE,
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Aux loss of the live transition (row 0), plus replayed rows when `training` and the
        frame set is full enough; offers the live transition to the frame set."""
        aux = self.config.aux
        transition_poses = np.stack([self._prev_pose, pose])
        # The trained rows' frames are the transitions' first ones when f_{t-1} carries the terms.
        side = 0 if aux.context_rows_train else 1
        poses, ticks = transition_poses[side][None], np.array([self.frames - 1 + side])
        prev_images = self._batch(self._prev_frame[None]) if self._prev_frame is not None else None
        train_context = training and aux.trains_context and prev_images is not None
        prev = self.encoder(prev_images) if train_context else self._history[-1]
        history = torch.cat(list(self._history), dim=0)
        actions, magnitudes = self._encode_actions([prev_action])
        # The trained rows' frames (the live frame's tensor is step()'s), for the decoder only.
        row_images = (prev_images if aux.context_rows_train else images) if 'decoder' in self.aux.heads else None
        indices = None
        if training and self.frame_set is not None and len(self.frame_set) >= self.config.replay_batch:
            indices = self.frame_set.sample(self.config.replay_batch)
            replayed, replayed_prev, replayed_row_images, replayed_actions, replayed_magnitudes = \
                self._replay_rows(indices)
            features = torch.cat([features, replayed])
            prev = torch.cat([prev, replayed_prev])
            actions = torch.cat([actions, replayed_actions])
            magnitudes = torch.cat([magnitudes, replayed_magnitudes])
            row_images = None if row_images is None else torch.cat([row_images, replayed_row_images])
            poses = np.concatenate([poses, self.frame_set.poses[indices, side]])
            ticks = np.concatenate([ticks, self.frame_set.ticks[indices] - 1 + side])
        prediction = self.aux.predict(prev, actions) if self.config.aux.loss_predictive else None
        odometry = ((torch.from_numpy(poses).float().to(self.device), torch.from_numpy(ticks).to(self.device))
                    if 'odometry' in self.aux.heads else (None, None))   # only the odometry term reads them
        total, terms = self.aux(features, prediction, prev, magnitudes, history, row_images, actions, *odometry)
        with torch.no_grad():  # in the space the predictor works in: the projector's, if any
            target = self.aux.project(features.detach())
            guess = self.aux.project(prev.detach()) if prediction is None else prediction.detach()
            errors = (guess - target).pow(2).mean(dim=-1).cpu().numpy()
        self._last_target = target[0].cpu().numpy()
        self._last_prediction = None if prediction is None else prediction[0].detach().cpu().numpy()
        if self.frame_set is not None:
            embeddings = features.detach().cpu().numpy()
            if indices is not None:
                self.frame_set.update_losses(indices, errors[1:], embeddings[1:])
            if self._prev_frame is not None:
                self.frame_set.offer(self._prev_frame, frame, prev_action, float(errors[0]), embeddings[0],
                                     transition_poses, self.frames)
        return total, terms

    def _batch_loss(self, frame: np.ndarray, prev_action: Sequence[int] | None
                    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """The batch objective over the live transition and replayed ones; None until the frame
        set holds two. Offers the live transition, with its row's error as priority."""
        assert self.objective is not None and self.frame_set is not None and self._prev_frame is not None
        if len(self.frame_set) < 2:
            self.frame_set.offer(self._prev_frame, frame, prev_action, 0.0)
            return None, {}
        indices = self.frame_set.sample(self.config.replay_batch)
        prev_images = self._batch(np.concatenate([self._prev_frame[None], self.frame_set.prev_frames[indices]]))
        images = self._batch(np.concatenate([frame[None], self.frame_set.frames[indices]]))
        first, second = self.objective.views(prev_images, images)
        features = self.encoder(torch.cat([first, second]))
        first_features, second_features = features.chunk(2)
        actions = torch.from_numpy(np.concatenate([
            np.asarray(prev_action if prev_action is not None else [UNKNOWN_ACTION] * len(ACTION_DIMS))[None],
            self.frame_set.actions[indices]])).to(self.device)
        total, terms, errors = self.objective(first_features, second_features, images, actions)
        errors, embeddings = errors.cpu().numpy(), first_features.detach().cpu().numpy()
        self.frame_set.update_losses(indices, errors[1:], embeddings[1:])
        self.frame_set.offer(self._prev_frame, frame, prev_action, float(errors[0]), embeddings[0])
        return total, terms

    def _encode_actions(self, actions: Sequence[Sequence[int] | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """One-hot rows (zeros for an unknown action) and action magnitudes (0 when unknown)."""
        unknown = np.zeros(ACTION_ONE_HOT_DIM, np.float32)
        rows = np.stack([unknown if a is None else one_hot(a) for a in actions])
        magnitudes = np.array([0.0 if a is None else action_magnitude(a) for a in actions], np.float32)
        return torch.from_numpy(rows).to(self.device), torch.from_numpy(magnitudes).to(self.device)

    def _replay_rows(self, indices: np.ndarray
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features of the replayed frames and of their predecessors, each side with gradients
        only when `predictive_gradient` trains it; the trained rows' images; actions."""
        assert self.frame_set is not None
        aux = self.config.aux
        images = self._batch(self.frame_set.frames[indices])
        prev_images = self._batch(self.frame_set.prev_frames[indices])
        with torch.set_grad_enabled(not aux.context_rows_train):
            features = self.encoder(images)
        with torch.set_grad_enabled(aux.trains_context):
            prev = self.encoder(prev_images)
        stored = self.frame_set.actions[indices]
        actions, magnitudes = self._encode_actions([None if row[0] == UNKNOWN_ACTION else row for row in stored])
        return features, prev, prev_images if aux.context_rows_train else images, actions, magnitudes

    def _batch(self, frames: np.ndarray) -> torch.Tensor:
        return frames_to_batch(frames, self.device)

    def _resized(self, frame: np.ndarray) -> np.ndarray:
        size = self.config.image_size
        if frame.shape[:2] != (size, size):
            frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
        return frame

    def _make_ema(self) -> Encoder:
        ema = copy.deepcopy(self.encoder)
        ema.requires_grad_(False)
        return ema

    @torch.no_grad()
    def _update_ema(self) -> None:
        assert self.ema_encoder is not None
        weight = 1.0 - self.config.ema_decay
        for ema_param, param in zip(self.ema_encoder.parameters(), self.encoder.parameters()):
            ema_param.lerp_(param, weight)

    @property
    def published_encoder(self) -> Encoder:
        """The encoder whose features go out (the EMA one when enabled)."""
        return self.ema_encoder if self.ema_encoder is not None else self.encoder

    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        """(B, feature_dim) features of a batch of frames (B x H x W x 3 uint8, already at
        image_size), from the encoder whose features go out now; for learners that replay frames."""
        return self.published_encoder(self._batch(frames)).cpu()

    def feature_stats(self, last_n: int | None = None) -> dict[str, float]:
        """Mean, per-dimension std and effective rank of the last `last_n` published features."""
        window = list(self._published)[-last_n:] if last_n else list(self._published)
        return feature_summary(np.stack(window) if window else np.zeros((0, self.config.feature_dim)))

    def preview_image(self, frame: np.ndarray) -> np.ndarray:
        """Frame beside heat strips of f_t, the predictor's f_t and their error (HxWx3 uint8), in
        the space the predictor works in (the projector's, when there is one)."""
        return render_preview(frame, self._last_target, self._last_prediction)

    def update_setting(self, name: str, value: float | int) -> None:
        """Apply a changed live setting (or `budget_s`) from the next frame on."""
        if name == 'budget_s':
            self.config.budget_s = value
            if self.budget is not None:
                self.budget.budget_s = value
            return
        if not assign(name, value, self.config, self.config.aux):
            raise KeyError(f'{name} is not a perception setting')
        if name in ('learning_rate', 'lr_decay_steps', 'min_learning_rate'):
            self._set_learning_rate()
        elif name == 'train_every':
            self.train_every = value
            if self.budget is not None:
                self.budget.train_every = value

    @property
    def current_learning_rate(self) -> float:
        """The rate of the next training step: constant for lr_decay_steps, then an inverse
        square root of the step count (fast early learning, then the smaller steps that keep
        long runs from drifting; docs/perception.md, "Longer training"), floored so learning
        never stops."""
        cfg = self.config
        if cfg.lr_decay_steps <= 0 or self.train_steps <= cfg.lr_decay_steps:
            return cfg.learning_rate
        decayed = cfg.learning_rate * math.sqrt(cfg.lr_decay_steps / self.train_steps)
        return max(decayed, min(cfg.min_learning_rate, cfg.learning_rate))

    def _set_learning_rate(self) -> None:
        rate = self.current_learning_rate
        for group in self.optimizer.param_groups:
            group['lr'] = rate

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """Published encoder weights as plain CPU tensors (ready for safetensors)."""
        return {k: v.detach().cpu().clone().contiguous() for k, v in self.published_encoder.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        """A snapshot (deep copy, so later training cannot change it) of everything needed to
        resume: tensors, nested dicts/lists of tensors and plain Python only."""
        dim = self.config.feature_dim
        history = torch.cat(list(self._history), dim=0) if self._history else torch.zeros(0, dim)
        return copy.deepcopy({
            'config': asdict(self.config),
            'encoder': self.encoder.state_dict(),
            'predictor': self.aux.predictor.state_dict(),
            'aux_heads': self.aux.heads.state_dict(),
            'objective': self.objective.state_dict() if self.objective is not None else {},
            'ema_encoder': self.ema_encoder.state_dict() if self.ema_encoder is not None else {},
            'optimizer': self.optimizer.state_dict(),
            'counters': {'frames': self.frames, 'train_steps': self.train_steps,
                         'since_train': self._since_train, 'train_every': self.train_every},
            'budget': self.budget.state_dict() if self.budget is not None else {},
            'history': history.detach().cpu(),
            'prev_frame': torch.from_numpy(self._prev_frame.copy()) if self._prev_frame is not None
            else torch.zeros(0, dtype=torch.uint8),
            'frame_set': self.frame_set.state_dict() if self.frame_set is not None else {},
        })

    def _load_heads(self, saved: dict[str, torch.Tensor]) -> bool:
        """Load each aux head whose saved weights fit it; True when every head was loaded and
        none was left behind. A state saved before a term was switched on (or after one was
        switched off), or with a head of another form (the odometry read-out linear, now an
        MLP), still resumes: its encoder and predictor carry on, a new or reshaped head starts
        at init, a dropped one is left behind."""
        def shapes(weights: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Size]]:
            by_head: dict[str, dict[str, torch.Size]] = {}
            for key, value in weights.items():
                by_head.setdefault(key.split('.')[0], {})[key] = value.shape
            return by_head

        saved_shapes, own_shapes = shapes(saved), shapes(self.aux.heads.state_dict())
        fitting = {name for name, head in saved_shapes.items() if own_shapes.get(name) == head}
        self.aux.heads.load_state_dict({key: value for key, value in saved.items() if key.split('.')[0] in fitting},
                                       strict=False)
        return fitting == set(saved_shapes) == set(own_shapes)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()`; refuses a state built for another shape."""
        saved = state['config']
        for key, default in (('image_size', None), ('feature_dim', None), ('objective', AUX)):
            if saved.get(key, default) != getattr(self.config, key):
                raise ValueError(f'state has {key}={saved.get(key, default)}, this perception has '
                                 f'{getattr(self.config, key)}')
        self.encoder.load_state_dict(state['encoder'])
        # A state saved with the other predictor form (the default was 'mlp') keeps its encoder
        # and heads; the predictor starts at init, like a head switched on.
        predictor_matches = saved.get('aux', {}).get('predictor', 'mlp') == self.config.aux.predictor
        if predictor_matches:
            self.aux.predictor.load_state_dict(state['predictor'])
        heads_match = self._load_heads(state.get('aux_heads') or {}) and predictor_matches
        if self.objective is not None and state.get('objective'):
            self.objective.load_state_dict(state['objective'])
        if self.ema_encoder is not None:
            self.ema_encoder.load_state_dict(state['ema_encoder'] or self.encoder.state_dict())
        if heads_match:  # else Adam's parameter list differs: it starts afresh, the weights carry on
            self.optimizer.load_state_dict(copy.deepcopy(state['optimizer']))  # Adam keeps tensors it is given
        counters = state['counters']
        self.frames = int(counters['frames'])
        self.train_steps = int(counters['train_steps'])
        self._since_train = int(counters['since_train'])
        self.train_every = int(counters['train_every'])
        if self.budget is not None and state['budget']:
            self.budget.load_state_dict(state['budget'])
        prev_frame = state['prev_frame']
        self._prev_frame = prev_frame.numpy().copy() if prev_frame.numel() else None
        self._prev_pose = UNKNOWN_POSE  # odometry starts afresh: poses from before are not comparable
        if self.frame_set is not None and state['frame_set']:
            self.frame_set.load_state_dict(state['frame_set'])
        self._history.clear()
        for row in state['history'].to(self.device):
            self._history.append(row.unsqueeze(0))


"""learner_node's core for `algorithm: branching_q`: a live stream of decisions in, Q weights out.

The policy publishes one experience message per decision (policy_node `epsilon_greedy`);
learner_node pairs each with the camera frame of the same stamp and the reward heard since the
previous decision, and hands them here. Decision t+1's reward is the consequence of decision
t's action, so each arrival completes the previous decision's transition. A hole in the `seq`
numbering (a lost message, a restarted policy) or a decision whose frame never came breaks the
chain: nothing is joined across it (BranchingQLearner.break_chain).

With `replay: frames` the replay keeps the frames and encodes each drawn batch with a copy of
perception_node's encoder, refreshed whenever perception ships new encoder weights: the Q
network then learns on features of the encoder as it is, not as it was when each decision was
taken (docs/perception.md, "Downstream"). As the copy changes only when new weights come (every
few seconds), a frame's features are kept until then rather than encoded at every draw. Until
the first encoder weights arrive, decisions are kept but nothing trains. With `replay: features`
the replay keeps the features the policy acted on (for a perception that ships no encoder).

Each decision owes `q_updates_per_decision` updates, paid on the training thread; a learner
that falls behind gives up what it owes beyond MAX_OWED_DECISIONS decisions' worth (counted),
so it never pays a backlog of minutes in a burst. Every `q_ship_every` updates the network
becomes the next version, shipped with the exploration rate the policy is to act with.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ami_nodes.learning.branching_q import BranchingQConfig, BranchingQLearner
from ami_nodes.perception.encoder import Encoder, frames_to_batch
from ami_nodes.persistence.tensors import Spec, tensor_spec
from ami_nodes.settings import assign, setting

REPLAYS = ('frames', 'features')
#: Owed updates beyond this many decisions' worth are given up (a learner far behind).
MAX_OWED_DECISIONS = 8


@dataclass
class DecisionStreamConfig:
    """Settings are learner_node parameters of the same name (ami_nodes.settings)."""

    q_replay: str = setting('frames', "branching_q: what the replay keeps, 'frames' (encoded when "
                            "drawn, with perception_node's newest encoder) or 'features' (as the "
                            'policy acted on them)', choices=REPLAYS)
    q_ship_every: int = setting(8, 'branching_q: updates between shipped policy versions', 1, 10**6,
                                live=True)


class DecisionStreamQ:
    """A stream of (seq, observation, action, reward) decisions in; versioned Q weights out."""

    def __init__(self, feature_dim: int, action_dims: Sequence[int], q_config: BranchingQConfig,
                 config: DecisionStreamConfig, reward_weight: float = 1.0, seed: int = 1,
                 device: torch.device | str = 'cpu') -> None:
        if config.q_replay not in REPLAYS:
            raise ValueError(f'q_replay is {config.q_replay!r}; expected one of {REPLAYS}')
        self.config = config
        self.device = torch.device(device)
        self.reward_weight = reward_weight
        self.encoder: Encoder | None = None
        self.encoder_checksum = ''   # of the encoder weights in use; '' until the first arrive
        if config.q_replay == 'frames':
            self.encoder = Encoder(feature_dim=feature_dim).to(self.device).requires_grad_(False).eval()
        self.q = BranchingQLearner(feature_dim, action_dims, q_config, seed,
                                   encode=self._encode_frames if self.encoder is not None else None,
                                   device=self.device, cache_features=self.encoder is not None)
        self.version = 0
        self._last: tuple[int, np.ndarray, tuple[int, ...]] | None = None
        self._owed = 0
        self._since_ship = 0
        self.counters = {'chain_breaks': 0, 'missing_observations': 0, 'updates_given_up': 0,
                         'encoder_updates': 0}
        self.last_loss = float('nan')

    @property
    def frames(self) -> bool:
        return self.encoder is not None

    def encoder_spec(self) -> dict[str, Spec]:
        """What encoder weights must look like to be used here (empty with a features replay)."""
        return tensor_spec(self.encoder.state_dict()) if self.encoder is not None else {}

    def set_encoder(self, tensors: Mapping[str, torch.Tensor], checksum: str) -> None:
        """Encode the replay with these weights from the next update on."""
        self.encoder.load_state_dict({k: v.to(self.device) for k, v in tensors.items()})
        self.q.encoder_changed()
        self.encoder_checksum = checksum
        self.counters['encoder_updates'] += 1

    @torch.no_grad()
    def _encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        return self.encoder(frames_to_batch(frames, self.device))

    def add(self, seq: int, observation: np.ndarray | None, action: Sequence[int], reward: float) -> None:
        """Decision `seq`: what it saw (None: its frame never came), what it did, and the
        reward heard since the previous decision (that decision's consequence)."""
        last, self._last = self._last, None
        if observation is None:
            self.counters['missing_observations'] += 1
            self.q.break_chain()
            return
        if last is not None and seq == last[0] + 1:
            self.q.observe(last[1], last[2], self.reward_weight * reward, observation)
            if self.trainable():
                per_decision = self.q.config.q_updates_per_decision
                owed = self._owed + per_decision
                self._owed = min(owed, MAX_OWED_DECISIONS * per_decision)
                self.counters['updates_given_up'] += owed - self._owed
        else:
            if last is not None:
                self.counters['chain_breaks'] += 1
            self.q.break_chain()
        self._last = (seq, observation, tuple(action))

    def trainable(self) -> bool:
        """The warm-up is over, the replay holds a transition, and a frames replay has an
        encoder; until then decisions owe no updates (as the harness's learner trains none)."""
        q = self.q
        return (q.decisions >= q.config.q_warmup_decisions and q.size > 0
                and (not self.frames or bool(self.encoder_checksum)))

    def owes(self) -> bool:
        return self._owed > 0

    def train(self) -> bool:
        """Pay one owed update (call while `owes`); True when a new version is due."""
        loss = self.q.update()
        self.last_loss = loss
        self._owed -= 1
        self._since_ship += 1
        if self._since_ship < self.config.q_ship_every:
            return False
        self._since_ship = 0
        self.version += 1
        return True

    def epsilon(self) -> float:
        return self.q.epsilon()

    def update_setting(self, name: str, value: float | int) -> None:
        """Apply a changed live setting from the next update on; `extrinsic_weight` weighs the
        rewards of decisions from now on."""
        if name == 'extrinsic_weight':
            self.reward_weight = float(value)
        elif not assign(name, value, self.q.config, self.config):
            raise KeyError(f'{name} is not a branching_q setting')
        elif name == 'q_learning_rate':
            self.q.set_learning_rate(value)

    def continue_above(self, version: int) -> bool:
        """Number the next weights above `version`, one a policy already acts with (after a
        restart from an older checkpoint: see CuriosityPPOLearner.continue_above)."""
        if version < self.version:
            return False
        self.version = version + 1
        return True

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        return self.q.network_state_dict()

    def stats(self) -> dict[str, float]:
        q = self.q
        return {'q_loss': self.last_loss, 'epsilon': self.epsilon(), 'decisions': q.decisions,
                'updates': q.updates, 'replay_size': q.size, 'version': self.version,
                'frames_encoded': q.encoded,
                'updates_owed': self._owed, **self.counters}

    def state_dict(self) -> dict:
        return {'q': self.q.state_dict(), 'version': self.version, 'counters': dict(self.counters)}

    def load_state_dict(self, state: dict) -> None:
        self.q.load_state_dict(state['q'])
        self.version = int(state['version'])
        self.counters.update({k: int(v) for k, v in state['counters'].items() if k in self.counters})
        self._last = None

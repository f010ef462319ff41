"""Experience from the policy node's stream, cut into rollouts of consecutive steps.

Transitions arrive one per policy tick, numbered by `seq`. A message can be lost, arrive
late, or come twice, and the policy node can restart. The buffer never joins steps across a
hole: GAE and the forward model both assume step t+1 really followed step t.

Decisions:
- Reordering: a transition that arrives ahead of a missing one waits in a small window
  (`reorder_window` seqs). If the missing one turns up in time, the steps are re-sorted and
  nothing is lost. Once a transition more than `reorder_window` ahead arrives, the missing seqs
  are declared lost: a gap.
- Late arrivals: a seq below the next expected one is dropped (it was given up for lost, or it
  is a duplicate). If its stamp is *newer* than the last accepted one, the sender restarted
  its numbering: the run is closed and a new one starts there.
- Gaps: the run before the hole is truncated: its last transition becomes the bootstrap state
  of a shorter rollout (its features and value are real, but the consequence of its action was
  never seen, so it is not trained on). Runs too short to be worth an update are discarded.
- Rollouts overlap by one transition: the bootstrap of one is the first step of the next.
- Extrinsic reward: `Transition.extrinsic_reward` is the reward observed together with that
  transition's features, i.e. the consequence of the previous action. The reward for step t
  is therefore read from transition t+1, like the forward model's target.
- Bounded: at most `max_rollouts` ready rollouts are kept; when full the oldest is evicted,
  since the freshest experience has the least policy lag.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass
class Transition:
    """One policy tick as the policy node published it."""

    seq: int
    stamp_ns: int
    features: np.ndarray
    action: np.ndarray
    log_prob: float
    value: float
    policy_version: int
    extrinsic_reward: float = 0.0


@dataclass
class Rollout:
    """T consecutive steps plus what followed the last one (for bootstrapping)."""

    seq: np.ndarray  # (T,) int64
    stamp_ns: np.ndarray  # (T,) int64
    features: np.ndarray  # (T, D) float32
    actions: np.ndarray  # (T, heads) int64
    log_probs: np.ndarray  # (T,) behaviour log-probs
    values: np.ndarray  # (T,) behaviour values
    policy_versions: np.ndarray  # (T,) int64
    next_features: np.ndarray  # (T, D): features of step t+1 (the last row is the bootstrap state)
    extrinsic_rewards: np.ndarray  # (T,): extrinsic reward observed with step t+1
    bootstrap_value: float  # behaviour value of the state after the last step
    ends_at_gap: bool  # True when the run was cut short by a hole in the stream

    def __len__(self) -> int:
        return int(self.seq.shape[0])

    @classmethod
    def from_transitions(cls, steps: list[Transition], bootstrap: Transition, ends_at_gap: bool) -> Rollout:
        following = steps[1:] + [bootstrap]
        return cls(
            seq=np.array([t.seq for t in steps], dtype=np.int64),
            stamp_ns=np.array([t.stamp_ns for t in steps], dtype=np.int64),
            features=np.stack([np.asarray(t.features, dtype=np.float32) for t in steps]),
            actions=np.stack([np.asarray(t.action, dtype=np.int64) for t in steps]),
            log_probs=np.array([t.log_prob for t in steps], dtype=np.float32),
            values=np.array([t.value for t in steps], dtype=np.float32),
            policy_versions=np.array([t.policy_version for t in steps], dtype=np.int64),
            next_features=np.stack([np.asarray(t.features, dtype=np.float32) for t in following]),
            extrinsic_rewards=np.array([t.extrinsic_reward for t in following], dtype=np.float32),
            bootstrap_value=float(bootstrap.value),
            ends_at_gap=ends_at_gap,
        )

    def state_dict(self) -> dict:
        """Arrays as tensors, scalars as numbers: loadable with torch.load(weights_only=True)."""
        return {f.name: torch.as_tensor(v) if isinstance(v := getattr(self, f.name), np.ndarray) else v
                for f in fields(self)}

    @classmethod
    def from_state_dict(cls, state: dict) -> Rollout:
        return cls(**{f.name: state[f.name].numpy().copy() if isinstance(state[f.name], torch.Tensor)
                      else state[f.name] for f in fields(cls)})


_FLOAT_FIELDS = ('features', 'log_prob', 'value', 'extrinsic_reward')


def stack_transitions(steps: list[Transition]) -> dict[str, torch.Tensor]:
    """Transitions as a dict of tensors (one row each), for checkpoints."""
    if not steps:
        return {}
    out = {}
    for f in fields(Transition):
        column = np.stack([np.asarray(getattr(t, f.name)) for t in steps])
        out[f.name] = torch.as_tensor(column.astype(np.float32 if f.name in _FLOAT_FIELDS else np.int64))
    return out


def unstack_transitions(stacked: dict[str, torch.Tensor]) -> list[Transition]:
    if not stacked:
        return []
    steps = []
    for i in range(stacked['seq'].shape[0]):
        steps.append(Transition(
            seq=int(stacked['seq'][i]), stamp_ns=int(stacked['stamp_ns'][i]),
            features=stacked['features'][i].numpy().copy(), action=stacked['action'][i].numpy().copy(),
            log_prob=float(stacked['log_prob'][i]), value=float(stacked['value'][i]),
            policy_version=int(stacked['policy_version'][i]),
            extrinsic_reward=float(stacked['extrinsic_reward'][i])))
    return steps


_COUNTERS = ('received', 'accepted', 'reordered', 'gaps', 'missing', 'late_dropped', 'restarts',
             'rollouts', 'short_rollouts', 'discarded')


class _Stream:
    """One source's numbering: its open run, out-of-order arrivals and counters."""

    def __init__(self) -> None:
        self.run: list[Transition] = []  # consecutive, ends at next_seq - 1
        self.pending: dict[int, Transition] = {}  # arrived ahead of a missing seq
        self.next_seq: int | None = None
        self.last_stamp = -1
        self.counters = {name: 0 for name in _COUNTERS}

    def state_dict(self) -> dict:
        return {'counters': dict(self.counters),
                'next_seq': -1 if self.next_seq is None else self.next_seq,
                'last_stamp': self.last_stamp,
                'run': stack_transitions(self.run),
                'pending': stack_transitions(sorted(self.pending.values(), key=lambda t: t.seq))}

    def load_state_dict(self, state: dict) -> None:
        self.counters = {name: int(state['counters'].get(name, 0)) for name in _COUNTERS}
        self.next_seq = None if int(state['next_seq']) < 0 else int(state['next_seq'])
        self.last_stamp = int(state['last_stamp'])
        self.run = unstack_transitions(state['run'])
        self.pending = {t.seq: t for t in unstack_transitions(state['pending'])}


class ExperienceBuffer:
    """Thread-safe: the subscription callback calls `add`, the training thread calls `pop`.

    Several sources (the robots of a fleet) may feed one buffer: each has its own numbering,
    so holes, late arrivals and restarts are judged and counted per source, and a rollout
    never mixes two sources. Ready rollouts from all sources share one queue, oldest first.
    """

    def __init__(self, rollout_length: int = 128, reorder_window: int = 4, min_rollout_length: int = 16,
                 max_rollouts: int = 32) -> None:
        if not 1 <= min_rollout_length <= rollout_length:
            raise ValueError('need 1 <= min_rollout_length <= rollout_length')
        self.rollout_length = rollout_length
        self.reorder_window = reorder_window
        self.min_rollout_length = min_rollout_length
        self.max_rollouts = max_rollouts
        self._cond = threading.Condition()
        self._streams: dict[str, _Stream] = {}
        self._ready: deque[list[Transition]] = deque()  # each T+1 transitions (last = bootstrap)
        self._evicted = 0

    def add(self, transition: Transition, source: str = '') -> None:
        with self._cond:
            stream = self._streams.setdefault(source, _Stream())
            stream.counters['received'] += 1
            seq = int(transition.seq)
            if stream.next_seq is None:
                self._start(stream, transition)
            elif seq == stream.next_seq:
                if stream.pending:
                    stream.counters['reordered'] += 1
                self._accept(stream, transition)
                self._drain_pending(stream)
            elif seq < stream.next_seq:
                if transition.stamp_ns > stream.last_stamp:
                    stream.counters['restarts'] += 1
                    self._close_run(stream)
                    stream.pending.clear()
                    self._start(stream, transition)
                else:
                    stream.counters['late_dropped'] += 1
            elif seq in stream.pending:
                stream.counters['late_dropped'] += 1
            else:
                stream.pending[seq] = transition
                if seq - stream.next_seq > self.reorder_window:
                    self._skip_gap(stream)
            self._cond.notify_all()

    def pop(self, timeout: float | None = 0.0) -> Rollout | None:
        """The oldest ready rollout, waiting up to `timeout` seconds (None: forever)."""
        with self._cond:
            if not self._ready and timeout != 0.0:
                self._cond.wait_for(lambda: bool(self._ready), timeout)
            if not self._ready:
                return None
            steps = self._ready.popleft()
        return Rollout.from_transitions(steps[:-1], steps[-1], ends_at_gap=len(steps) - 1 < self.rollout_length)

    def __len__(self) -> int:
        with self._cond:
            return len(self._ready)

    def stats(self) -> dict[str, int]:
        """Counters summed over every source, plus the shared queue."""
        with self._cond:
            totals = {name: sum(s.counters[name] for s in self._streams.values())
                      for name in _COUNTERS}
            return {**totals, 'evicted': self._evicted, 'ready': len(self._ready),
                    'run_length': sum(len(s.run) for s in self._streams.values()),
                    'pending': sum(len(s.pending) for s in self._streams.values())}

    def source_stats(self) -> dict[str, dict[str, int]]:
        """Each source's own counters: which robot loses messages or restarts."""
        with self._cond:
            return {name: dict(s.counters) for name, s in self._streams.items()}

    def _start(self, stream: _Stream, transition: Transition) -> None:
        stream.run = []
        self._accept(stream, transition)

    def _accept(self, stream: _Stream, transition: Transition) -> None:
        stream.counters['accepted'] += 1
        stream.run.append(transition)
        stream.next_seq = int(transition.seq) + 1
        stream.last_stamp = max(stream.last_stamp, int(transition.stamp_ns))
        if len(stream.run) == self.rollout_length + 1:
            self._emit(stream, stream.run)
            stream.run = [stream.run[-1]]

    def _drain_pending(self, stream: _Stream) -> None:
        while stream.next_seq in stream.pending:
            self._accept(stream, stream.pending.pop(stream.next_seq))

    def _skip_gap(self, stream: _Stream) -> None:
        """Give up on the missing seqs: close the run, restart at the oldest pending one."""
        while stream.pending and max(stream.pending) - stream.next_seq > self.reorder_window:
            resume = min(stream.pending)
            stream.counters['gaps'] += 1
            stream.counters['missing'] += resume - stream.next_seq
            self._close_run(stream)
            self._start(stream, stream.pending.pop(resume))
            self._drain_pending(stream)

    def _close_run(self, stream: _Stream) -> None:
        """Truncate the run at a hole: its last transition becomes the bootstrap state."""
        if len(stream.run) - 1 >= self.min_rollout_length:
            stream.counters['short_rollouts'] += 1
            self._emit(stream, stream.run)
        else:
            stream.counters['discarded'] += len(stream.run)
        stream.run = []

    def _emit(self, stream: _Stream, steps: list[Transition]) -> None:
        if len(self._ready) == self.max_rollouts:
            self._ready.popleft()
            self._evicted += 1
        self._ready.append(list(steps))
        stream.counters['rollouts'] += 1

    def state_dict(self) -> dict:
        with self._cond:
            return {'sources': {name: s.state_dict() for name, s in self._streams.items()},
                    'evicted': self._evicted,
                    'ready': [stack_transitions(steps) for steps in self._ready]}

    def load_state_dict(self, state: dict, legacy_source: str = '') -> None:
        """`legacy_source`: the source a one-stream state (written before sources) belongs to."""
        with self._cond:
            self._streams = {}
            sources = state['sources'] if 'sources' in state else {legacy_source: state}
            for name, stream_state in sources.items():
                self._streams[name] = _Stream()
                self._streams[name].load_state_dict(stream_state)
            self._evicted = int(state['evicted'] if 'evicted' in state
                                else state['counters'].get('evicted', 0))
            self._ready = deque(unstack_transitions(s) for s in state['ready'])

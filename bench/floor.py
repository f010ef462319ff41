"""The floor: the hot path's per-frame work in one process, with no ROS and no sockets.

What is left when transport, serialisation and executors are taken away: perception's
`OnlinePerception.step` on an 84x84 frame (configured as perception_node configures it from
config/ami.yaml) followed by `ActorCritic.act`. The hot path minus this is what ROS costs.
"""
from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import numpy as np
import torch
import yaml

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.perception.online import OnlinePerception, OnlinePerceptionConfig
from bench.machine import REPO
from bench.stats import summary

FROZEN = 2**62  # perception_node's train_every when train_online is false


def node_params() -> tuple[dict, dict]:
    """perception_node's and policy_node's parameters from config/ami.yaml (with the shared ones)."""
    config = yaml.safe_load((REPO / 'config' / 'ami.yaml').read_text())
    shared = config['/**']['ros__parameters']
    return ({**shared, **config['perception_node']['ros__parameters']},
            {**shared, **config['policy_node']['ros__parameters']})


@dataclass
class FloorPipeline:
    """Perception + actor exactly as the two nodes build them, callable once per frame."""

    perception: OnlinePerception
    actor: ActorCritic
    frames: np.ndarray
    i: int = 0
    action: tuple[int, ...] | None = None  # the previous action, which perception's loss uses

    @classmethod
    def build(cls, train: bool, image_size: int = 84) -> FloorPipeline:
        perception_p, policy_p = node_params()
        budget_s = perception_p['budget_fraction'] / perception_p['frame_rate']
        perception = OnlinePerception(OnlinePerceptionConfig(
            image_size=image_size, feature_dim=perception_p['feature_dim'],
            learning_rate=perception_p['learning_rate'],
            train_every=perception_p['train_every'] if train else FROZEN,
            budget_s=budget_s if train else 0.0,
            max_train_every=perception_p['max_train_every'],
            history_size=perception_p['history_size'], seed=perception_p['seed']))
        torch.manual_seed(policy_p['seed'])
        actor = ActorCritic(policy_p['feature_dim'], ACTION_DIMS, policy_p['hidden_size']).eval()
        frames = np.random.default_rng(0).integers(0, 256, (16, image_size, image_size, 3),
                                                   dtype=np.uint8)
        return cls(perception, actor, frames)

    def step(self) -> float:
        """One frame: encode, act as soon as the features exist (perception_node publishes them
        before its backward pass), then train when due; returns ms from frame to action."""
        frame = self.frames[self.i % len(self.frames)]
        start, acted = perf_counter(), []

        def act(features: np.ndarray) -> None:
            self.action = tuple(int(a) for a in self.actor.act(features).action)
            acted.append(perf_counter())

        self.perception.step(frame, self.action, on_features=act)
        self.i += 1
        return (acted[0] - start) * 1e3


def measure(train: bool, steps: int, warmup: int, image_size: int = 84) -> dict:
    """Frame -> action milliseconds (the hot path's floor) and whole-frame milliseconds
    (training included), run back to back (no pacing), after a warm-up."""
    pipeline = FloorPipeline.build(train, image_size)
    for _ in range(warmup):
        pipeline.step()
    to_action, whole = np.empty(steps), np.empty(steps)
    for i in range(steps):
        start = perf_counter()
        to_action[i] = pipeline.step()
        whole[i] = (perf_counter() - start) * 1e3
    return {**summary(to_action), 'whole_frame_ms': summary(whole), 'train_online': train,
            'image_size': image_size,
            'train_every_reached': pipeline.perception.train_every if train else None,
            'train_steps': pipeline.perception.train_steps, 'frames': pipeline.perception.frames}


def run(quick: bool) -> dict:
    steps, warmup = (60, 10) if quick else (1500, 100)
    torch.set_num_threads(1)  # as the nodes run (torch_threads: 1)
    return {'how': f'{steps} frames back to back after {warmup} warm-up, one process, '
                   'torch 1 thread, random 84x84 frames; OnlinePerception.step + ActorCritic.act '
                   'built from config/ami.yaml (automatic train_every with budget_fraction). '
                   'p50/p99: frame -> action (act runs in on_features, before the backward '
                   'pass, as perception_node publishes); whole_frame_ms includes training.',
            'train_on': measure(True, steps, warmup), 'train_off': measure(False, steps, warmup)}

"""CuriosityPPOLearner: the learner node's whole core, fed through the experience buffer."""
import io

import numpy as np
import pytest
import torch

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.learning.experience import ExperienceBuffer, Transition
from ami_nodes.learning.learner import CuriosityPPOLearner, LearnerConfig
from ami_nodes.learning.ppo import PPOConfig

torch.set_num_threads(1)
D = 8


class TelevisionRoom:
    """Move-head choice 1 looks at a television (unpredictable next features); anything else
    lets the room drift predictably. A curious policy should learn to watch television."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.turn = 0.95 * np.linalg.qr(self.rng.normal(size=(D, D)))[0]
        self.features = self.rng.normal(size=D).astype(np.float32)

    def step(self, action: np.ndarray) -> np.ndarray:
        if action[0] == 1:
            self.features = self.rng.normal(size=D).astype(np.float32)
        else:
            self.features = (self.turn @ self.features).astype(np.float32)
            self.features /= max(1.0, float(np.linalg.norm(self.features)) / 3.0)
        return self.features


def run(learner: CuriosityPPOLearner, buffer: ExperienceBuffer, room: TelevisionRoom, steps: int,
        seq0: int = 0, version: int | None = None) -> tuple[list[dict], float]:
    """Act with the learner's current weights (as the policy node would), stream, train."""
    stats, watched = [], 0
    for i in range(steps):
        result = learner.actor_critic.act(room.features)
        buffer.add(Transition(seq=seq0 + i, stamp_ns=(seq0 + i) * 50_000_000, features=room.features.copy(),
                              action=result.action, log_prob=result.log_prob, value=result.value,
                              policy_version=learner.version if version is None else version))
        watched += int(result.action[0] == 1)
        room.step(result.action)
        while (rollout := buffer.pop()) is not None:
            learner.add(rollout)
            if (s := learner.step()) is not None:
                stats.append(s)
    return stats, watched / steps


def small_config(**ppo) -> LearnerConfig:
    return LearnerConfig(hidden_size=32, curiosity_hidden_size=64, min_new_samples=64,
                         ppo=PPOConfig(minibatch_size=32, **ppo))


def test_training_waits_for_enough_new_samples():
    learner, buffer = CuriosityPPOLearner(D, ACTION_DIMS, small_config()), ExperienceBuffer(rollout_length=32)
    stats, _ = run(learner, buffer, TelevisionRoom(0), 33)  # one rollout: 32 samples < 64
    assert stats == [] and not learner.ready() and learner.new_samples == 32
    stats, _ = run(learner, buffer, TelevisionRoom(0), 32, seq0=33)
    assert len(stats) == 1 and learner.version == 1 and learner.new_samples == 0
    for key in ('forward_loss', 'prediction_error_mean', 'intrinsic_reward_mean', 'extrinsic_reward_mean',
                'policy_loss', 'value_loss', 'entropy', 'approx_kl', 'clip_fraction', 'explained_variance',
                'lag_mean', 'lag_max', 'lag_histogram', 'samples_dropped_lag', 'rollouts'):
        assert key in stats[0], key


def test_stale_experience_is_cut_by_the_lag_cap():
    learner = CuriosityPPOLearner(D, ACTION_DIMS, small_config(max_policy_lag=2))
    learner.trainer.version = 10
    stats, _ = run(learner, ExperienceBuffer(rollout_length=32), TelevisionRoom(1), 65, version=3)
    assert stats[0]['samples_dropped_lag'] == 64 and not stats[0]['updated'] and learner.version == 10


def test_exported_weights_load_into_a_policy_and_checkpoints_load_without_pickle():
    learner, buffer = CuriosityPPOLearner(D, ACTION_DIMS, small_config()), ExperienceBuffer(rollout_length=32)
    run(learner, buffer, TelevisionRoom(2), 97)  # one update and one rollout pending
    policy = ActorCritic(D, ACTION_DIMS, 32)
    policy.load_state_dict(learner.policy_state_dict())
    x = np.ones(D, np.float32)
    expected = learner.actor_critic.act(x, deterministic=True).action.tolist()
    assert policy.act(x, deterministic=True).action.tolist() == expected

    blob = io.BytesIO()
    torch.save(learner.state_dict(), blob)
    blob.seek(0)
    clone = CuriosityPPOLearner(D, ACTION_DIMS, small_config())
    clone.load_state_dict(torch.load(blob, weights_only=True))
    assert clone.version == learner.version == 1 and clone.new_samples == learner.new_samples == 32
    assert clone.curiosity.error_stats.state_dict() == learner.curiosity.error_stats.state_dict()


def test_curiosity_drives_the_policy_to_the_unpredictable():
    torch.manual_seed(0)
    learner = CuriosityPPOLearner(D, ACTION_DIMS, LearnerConfig(
        hidden_size=32, curiosity_hidden_size=64, curiosity_learning_rate=3e-3,
        min_new_samples=128,
        ppo=PPOConfig(minibatch_size=32, learning_rate=3e-3, entropy_coef=0.0)))
    buffer, room = ExperienceBuffer(rollout_length=64), TelevisionRoom(3)
    _, before = run(learner, buffer, room, 256)
    run(learner, buffer, room, 3000, seq0=256)
    _, after = run(learner, buffer, room, 512, seq0=3256)
    assert before == pytest.approx(1 / 3, abs=0.1)
    assert after > 0.6


def test_a_learner_restored_behind_the_policy_continues_above_its_version():
    """Restored at v0 while the policy acts with v7: samples from v7 count from the future and
    are cut, so nothing trains until the learner numbers its weights past the policy's."""
    learner = CuriosityPPOLearner(D, ACTION_DIMS, small_config())
    stats, _ = run(learner, ExperienceBuffer(rollout_length=32), TelevisionRoom(3), 65, version=7)
    assert stats[0]['samples_dropped_lag'] == 64 and not stats[0]['updated']
    assert learner.continue_above(7) and learner.version == 8
    assert not learner.continue_above(7) and learner.version == 8  # already above
    stats, _ = run(learner, ExperienceBuffer(rollout_length=32), TelevisionRoom(3), 65, seq0=100,
                   version=7)
    assert stats[0]['updated'] and stats[0]['samples_dropped_lag'] == 0 and learner.version == 9


DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='no CUDA GPU on this machine'))]


@pytest.mark.parametrize('device', DEVICES)
def test_trains_on_its_device_and_ships_cpu_weights(device):
    learner = CuriosityPPOLearner(D, ACTION_DIMS, small_config(), device=device)
    stats, _ = run(learner, ExperienceBuffer(rollout_length=32), TelevisionRoom(4), 97)
    assert stats and stats[-1]['updated'] and learner.version == 1
    assert {p.device.type for p in learner.actor_critic.parameters()} == {device}
    assert {p.device.type for p in learner.curiosity.model.parameters()} == {device}
    shipped = learner.policy_state_dict()
    assert {t.device.type for t in shipped.values()} == {'cpu'}
    policy = ActorCritic(D, ACTION_DIMS, 32)
    policy.load_state_dict(shipped)  # a CPU policy node loads what a GPU learner ships
    clone = CuriosityPPOLearner(D, ACTION_DIMS, small_config())  # and a CPU learner resumes it
    clone.load_state_dict(learner.state_dict())
    assert clone.version == 1

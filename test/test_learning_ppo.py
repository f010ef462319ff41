"""PPOTrainer: the clipped objective, the policy-lag cut and checkpoints."""
import numpy as np
import pytest
import torch

from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.learning.ppo import PPOConfig, PPOTrainer, Segment, clipped_surrogate_loss

torch.set_num_threads(1)


def _grad(log_ratio: float, advantage: float, clip: float = 0.2) -> float:
    lr = torch.tensor([log_ratio], requires_grad=True)
    clipped_surrogate_loss(lr, torch.tensor([advantage]), clip).backward()
    return float(lr.grad[0])


def test_clipping_stops_the_gradient_only_past_the_favoured_bound():
    up, down = np.log(1.5), np.log(0.5)
    assert _grad(up, 1.0) == 0.0  # already 50% more likely and good: no further push
    assert _grad(down, -1.0) == 0.0  # already 50% less likely and bad: no further push
    assert _grad(up, -1.0) > 0.0  # overshot a bad action: the loss still pulls it back
    assert _grad(down, 1.0) < 0.0  # a good action made less likely: still pushed up
    assert _grad(0.0, 1.0) == pytest.approx(-1.0)


def _segment(n: int, versions, rng: np.random.Generator, log_probs=None) -> Segment:
    return Segment(
        features=rng.normal(size=(n, 6)).astype(np.float32),
        actions=np.stack([rng.integers(0, d, size=n) for d in (3, 2)], axis=1),
        log_probs=np.full(n, np.log(1 / 6)) if log_probs is None else log_probs,
        rewards=rng.normal(size=n), next_features=rng.normal(size=(n, 6)),
        terminated=np.zeros(n, bool), truncated=np.zeros(n, bool), policy_versions=versions)


@pytest.mark.parametrize('use_vtrace', [False, True])
def test_lagged_samples_are_cut_and_counted(use_vtrace):
    rng = np.random.default_rng(0)
    trainer = PPOTrainer(ActorCritic(6, (3, 2), 16), PPOConfig(max_policy_lag=2, minibatch_size=8, vtrace=use_vtrace))
    trainer.version = 5
    versions = np.array([0, 1, 2, 3, 3, 4, 4, 5, 5, 5, 6, 7])  # lags 5 4 3 2 2 1 1 0 0 0 -1 -2
    stats = trainer.update(_segment(12, versions, rng))
    assert stats['samples_dropped_lag'] == 5  # three too old, two from a newer version than ours
    assert stats['samples_used'] == 7
    assert stats['lag_histogram'] == [3, 2, 2, 5]
    assert stats['lag_max'] == 5
    assert stats['updated'] and trainer.version == 6
    assert trainer.samples_dropped_lag == 5


def test_nothing_fresh_enough_means_no_update_and_no_new_version():
    rng = np.random.default_rng(1)
    trainer = PPOTrainer(ActorCritic(6, (3, 2), 16), PPOConfig(max_policy_lag=1))
    trainer.version = 10
    before = {k: v.clone() for k, v in trainer.actor_critic.state_dict().items()}
    stats = trainer.update(_segment(8, np.zeros(8, np.int64), rng))
    assert not stats['updated'] and trainer.version == 10
    assert all(torch.equal(before[k], v) for k, v in trainer.actor_critic.state_dict().items())


def test_update_improves_the_advantaged_action_and_reports_diagnostics():
    rng = np.random.default_rng(2)
    model = ActorCritic(6, (3, 2), 32)
    trainer = PPOTrainer(model, PPOConfig(epochs=4, minibatch_size=16, learning_rate=1e-3,
                                           vtrace=False))
    seg = _segment(64, np.zeros(64, np.int64), rng)
    seg.log_probs = model.evaluate(seg.features, seg.actions)[0].detach()
    seg.rewards = (seg.actions[:, 0] == 1).float()  # a bandit: head 0 choice 1 pays
    seg.terminated = torch.ones(64, dtype=torch.bool)
    p_before = model.distribution(seg.features).heads[0].probs[:, 1].mean().item()
    stats = trainer.update(seg)
    p_after = model.distribution(seg.features).heads[0].probs[:, 1].mean().item()
    assert p_after > p_before
    for key in ('policy_loss', 'value_loss', 'entropy', 'approx_kl', 'clip_fraction', 'explained_variance',
                'lag_mean', 'lag_max', 'lag_histogram', 'samples_dropped_lag', 'behaviour_kl', 'grad_norm'):
        assert key in stats
    assert stats['behaviour_kl'] == pytest.approx(0.0, abs=1e-6)  # on-policy: behaviour == current at start
    assert 0.0 <= stats['clip_fraction'] <= 1.0


def test_state_dict_round_trip_restores_model_optimizer_and_counters():
    rng = np.random.default_rng(3)
    trainer = PPOTrainer(ActorCritic(6, (3, 2), 16), PPOConfig(minibatch_size=8))
    trainer.update(_segment(16, np.zeros(16, np.int64), rng))
    state = trainer.state_dict()
    clone = PPOTrainer(ActorCritic(6, (3, 2), 16), PPOConfig(minibatch_size=8))
    clone.load_state_dict(state)
    assert clone.version == trainer.version == 1 and clone.samples_trained == 16
    for k, v in trainer.actor_critic.state_dict().items():
        assert torch.equal(v, clone.actor_critic.state_dict()[k])
    assert clone.optimizer.state_dict()['state'][0]['step'] == trainer.optimizer.state_dict()['state'][0]['step']
    seg = _segment(16, np.ones(16, np.int64), np.random.default_rng(4))
    torch.manual_seed(0)
    a = trainer.update(seg)
    torch.manual_seed(0)
    b = clone.update(seg)
    assert a['policy_loss'] == pytest.approx(b['policy_loss'])

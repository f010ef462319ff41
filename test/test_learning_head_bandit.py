"""HeadBandit: a per-head preference learnt from one reward per decision (no ROS)."""
import numpy as np

from ami_nodes.action_space import ACTION_DIMS, HEAD_NAMES
from ami_nodes.learning.head_bandit import ContextualHeadBandit, HeadBandit

RUN = HEAD_NAMES.index('run')
MOVE = HEAD_NAMES.index('move')


def test_starts_uniform_and_samples_valid_actions():
    bandit = HeadBandit(np.random.default_rng(0))
    for probabilities, size in zip(bandit.probabilities(), ACTION_DIMS):
        assert np.allclose(probabilities, 1.0 / size, atol=0.05)   # Monte Carlo over 2000 draws
    actions = np.array([bandit.act() for _ in range(500)])
    assert all(actions[:, head].min() == 0 and actions[:, head].max() == size - 1
               for head, size in enumerate(ACTION_DIMS))


def test_learns_the_choices_that_pay_from_noisy_rewards_in_a_few_hundred_decisions():
    """Running pays 1 and moving forward 0.5, under noise of std 1: the regime of the
    exploration rewards (a few tenths of a standard deviation between choices)."""
    rng = np.random.default_rng(1)
    bandit = HeadBandit(np.random.default_rng(2))
    for _ in range(500):
        action = bandit.act()
        reward = 1.0 * (action[RUN] == 1) + 0.5 * (action[MOVE] == 1) + rng.normal()
        bandit.update(action, reward)
    probabilities = bandit.probabilities()
    assert probabilities[RUN][1] > 0.9
    assert probabilities[MOVE][1] > 0.6 and probabilities[MOVE].argmax() == 1
    assert all(np.isclose(p.sum(), 1.0) for p in probabilities)



def test_plausible_set_drops_a_worse_choice_and_keeps_equal_ones_mixed():
    """With plausible_z the bandit acts uniformly among choices it cannot tell apart: running
    (pays 1) leaves walking out, while left and right turns (pay the same) stay both in play."""
    rng = np.random.default_rng(1)
    bandit = HeadBandit(np.random.default_rng(2), plausible_z=3.0)
    actions = []
    for _ in range(500):
        action = bandit.act()
        bandit.update(action, 1.0 * (action[RUN] == 1) + rng.normal())
        actions.append(action)
    probabilities = bandit.probabilities()
    assert probabilities[RUN][1] == 1.0
    late_turns = np.array(actions[-200:])[:, HEAD_NAMES.index('turn')]
    assert np.bincount(late_turns, minlength=3).min() >= 40   # every turn choice still taken


def test_contextual_bandit_learns_a_choice_that_pays_only_in_some_views():
    """Turning left pays where the first feature is high (facing a wall), nothing elsewhere;
    running pays everywhere: the contextual bandit learns both, HeadBandit cannot learn the first."""
    rng = np.random.default_rng(3)
    bandit = ContextualHeadBandit(np.random.default_rng(4), context_dim=4)
    turn = HEAD_NAMES.index('turn')
    for _ in range(600):
        features = rng.normal(size=4)
        action = bandit.act(features)
        wall = features[0] > 0
        bandit.update(action, 1.0 * (action[RUN] == 1) + 1.5 * (wall and action[turn] == 1) + rng.normal())
    choices = np.array([bandit.act(np.array([sign * 1.5, 0.0, 0.0, 0.0])) for sign in (1, -1) for _ in range(100)])
    at_wall, in_open = choices[:100], choices[100:]
    assert (choices[:, RUN] == 1).mean() > 0.9
    assert (at_wall[:, turn] == 1).mean() > 0.8
    assert (in_open[:, turn] == 1).mean() < 0.6

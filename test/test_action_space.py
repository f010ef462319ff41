"""The discrete action and its velocity meaning (REP 103)."""
import numpy as np
import pytest

from ami_nodes.action_space import (
    ACTION_DIMS,
    NOOP,
    VelocityLimits,
    action_magnitude,
    action_to_velocity,
    one_hot,
    validate_action,
)


def test_noop_is_a_stop():
    v = action_to_velocity(NOOP)
    assert (v.linear_x, v.linear_y, v.linear_z, v.angular_z) == (0, 0, 0, 0)


@pytest.mark.parametrize('action, field, sign', [
    ((1, 0, 0, 0, 0), 'linear_x', 1), ((2, 0, 0, 0, 0), 'linear_x', -1),
    ((0, 1, 0, 0, 0), 'linear_y', 1), ((0, 2, 0, 0, 0), 'linear_y', -1),
    ((0, 0, 1, 0, 0), 'angular_z', 1), ((0, 0, 2, 0, 0), 'angular_z', -1),
    ((0, 0, 0, 1, 0), 'linear_z', 1)])
def test_each_head_moves_one_axis(action, field, sign):
    v = action_to_velocity(action)
    assert np.sign(getattr(v, field)) == sign
    others = {'linear_x', 'linear_y', 'linear_z', 'angular_z'} - {field}
    assert all(getattr(v, f) == 0 for f in others)


def test_run_uses_run_speed():
    limits = VelocityLimits(walk_speed=0.5, run_speed=2.0)
    assert action_to_velocity((1, 0, 0, 0, 1), limits).linear_x == 2.0
    assert action_to_velocity((1, 0, 0, 0, 0), limits).linear_x == 0.5


@pytest.mark.parametrize('bad', [(0, 0, 0, 0), (3, 0, 0, 0, 0), (0, 0, 0, 2, 0), (0.5, 0, 0, 0, 0)])
def test_invalid_actions_are_refused(bad):
    with pytest.raises(ValueError):
        validate_action(bad)


def test_one_hot_and_magnitude():
    encoded = one_hot((2, 0, 1, 1, 0))
    assert encoded.shape == (sum(ACTION_DIMS),) and encoded.sum() == len(ACTION_DIMS)
    assert encoded[2] == 1 and encoded[3] == 1 and encoded[7] == 1
    assert action_magnitude((2, 0, 1, 1, 0)) == 3

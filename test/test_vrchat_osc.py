"""VRChat's OSC input mapping: signs, only-changed sends, release-all, validation."""
import pytest

from ami_nodes.action_space import Velocity, VelocityLimits
from ami_nodes.actuation import vrchat_osc as osc
from ami_nodes.actuation.osc_sender import OscSender

LIMITS = VelocityLimits(walk_speed=0.5, run_speed=1.0, turn_rate=1.0)


def test_axes_follow_vrchat_signs():
    inputs = osc.velocity_to_inputs(Velocity(linear_x=0.5, linear_y=0.5, angular_z=0.5), LIMITS)
    assert inputs[osc.VERTICAL] == 0.5
    assert inputs[osc.HORIZONTAL] == -0.5  # ROS +y is left; VRChat Horizontal + is right
    assert inputs[osc.LOOK_HORIZONTAL] == -0.5
    assert inputs[osc.RUN] == 0 and inputs[osc.JUMP] == 0


def test_buttons_mode_and_run_and_jump():
    inputs = osc.velocity_to_inputs(Velocity(linear_x=-1.0, linear_y=-1.0, linear_z=1.0,
                                             angular_z=1.0), LIMITS, mode='buttons')
    assert inputs[osc.MOVE_BACKWARD] == 1 and inputs[osc.MOVE_FORWARD] == 0
    assert inputs[osc.MOVE_RIGHT] == 1 and inputs[osc.LOOK_LEFT] == 1
    assert inputs[osc.RUN] == 1 and inputs[osc.JUMP] == 1
    assert all(inputs[a] == 0.0 for a in osc.AXES)


def test_only_changes_are_sent_and_a_held_jump_is_not_resent():
    state = osc.InputState()
    jump = osc.velocity_to_inputs(Velocity(linear_z=1.0), LIMITS)
    first = state.changes(jump)
    assert (osc.JUMP, 1) in first and len(first) == len(osc.ALL_INPUTS)
    state.mark_sent(first)
    assert state.changes(jump) == []  # holding Jump: nothing sent, VRChat jumps once
    release = state.changes(osc.velocity_to_inputs(Velocity(), LIMITS))
    assert release == [(osc.JUMP, 0)]  # the 0 that makes the next jump an edge
    state.mark_sent(release)
    assert state.held == {}


def test_release_all_resets_everything_even_if_unsent():
    released = dict(osc.InputState().release_all())
    assert set(released) == set(osc.ALL_INPUTS)
    assert all(v == 0 for v in released.values())
    assert all(isinstance(released[a], float) for a in osc.AXES)
    assert all(isinstance(released[b], int) for b in osc.BUTTONS)


@pytest.mark.parametrize('address, value', [(osc.VERTICAL, 1.5), (osc.JUMP, 2), ('/input/Fly', 1)])
def test_invalid_inputs_are_refused(address, value):
    with pytest.raises(ValueError):
        osc.validate_input(address, value)


def test_failed_send_is_retried_next_time():
    sender = OscSender('no-such-host.invalid', 9000)
    state = osc.InputState()
    wanted = osc.velocity_to_inputs(Velocity(linear_x=0.5), LIMITS)
    state.mark_sent(sender.send(state.changes(wanted)))
    assert not sender.healthy and 'cannot resolve OSC host' in sender.last_error
    assert state.changes(wanted)  # nothing was marked sent, so it is all still owed


@pytest.mark.parametrize('field', ['linear_x', 'linear_y', 'linear_z', 'angular_z'])
@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
@pytest.mark.parametrize('mode', ['axes', 'buttons'])
def test_non_finite_velocities_never_become_inputs(field, bad, mode):
    # Clipping a NaN would give a full axis (max(-1, min(1, nan)) == 1.0): refuse instead.
    with pytest.raises(ValueError, match=f'velocity {field} is'):
        osc.velocity_to_inputs(Velocity(**{field: bad}), LIMITS, mode)


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_non_finite_axis_values_are_refused(bad):
    with pytest.raises(ValueError, match='axes take floats'):
        osc.validate_input(osc.VERTICAL, bad)


def test_huge_finite_velocities_clip_to_full_axes():
    inputs = osc.velocity_to_inputs(Velocity(linear_x=1e300, angular_z=-1e300), LIMITS)
    assert inputs[osc.VERTICAL] == 1.0 and inputs[osc.LOOK_HORIZONTAL] == 1.0

"""Declare a node's parameters from one table, each with a description and a range.

Live parameters (`live=True`) take effect on SetParameters (`ros2 param set`): rclpy checks
type and range against the descriptor, `declare` checks choices and the node's own rule, then
updates the node's values and calls its `apply`. Every other parameter is declared
read_only, so rclpy refuses a change with "Trying to set a read-only parameter".

Parameters that configure the core come from its config dataclasses (`params_of`), so their
name, default, range and description are written once, in ami_nodes.settings form. The same
tables are read by the consistency test that checks config/ami.yaml against them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.node import Node

from ami_nodes.action_space import VelocityLimits
from ami_nodes.settings import default_of, settings_of


@dataclass(frozen=True)
class Param:
    """One ROS parameter: name, default, what it is for and, for numbers, its range."""

    name: str
    default: Any
    description: str
    min: float | int | None = None
    max: float | int | None = None
    choices: tuple[str, ...] = ()
    live: bool = False  # safe to change while running; else read-only after start

    def descriptor(self) -> ParameterDescriptor:
        text = self.description
        if self.choices:
            text += f" (one of: {', '.join(self.choices)})"
        if self.live:
            text += ' [live: ros2 param set applies it at once]'
        descriptor = ParameterDescriptor(name=self.name, description=text,
                                         read_only=not self.live)
        if self.min is not None and self.max is not None:
            if isinstance(self.default, bool):
                pass
            elif isinstance(self.default, int):
                descriptor.integer_range = [IntegerRange(
                    from_value=int(self.min), to_value=int(self.max), step=0)]
            elif isinstance(self.default, float):
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(self.min), to_value=float(self.max), step=0.0)]
        return descriptor

    def check(self, value: Any) -> None:
        """Raise ValueError with a clear message when `value` is not allowed."""
        if self.choices and value not in self.choices:
            raise ValueError(f"parameter {self.name} is {value!r}, expected one of {self.choices}")


def params_of(config_type: type) -> tuple[Param, ...]:
    """One Param per setting of a core config dataclass: same name, default, range, text."""
    return tuple(Param(item.name, default_of(item), spec.description, spec.min, spec.max,
                       spec.choices, spec.live)
                 for item, spec in settings_of(config_type))


#: Called with (name, new value) after a live parameter changed; the namespace is updated.
Apply = Callable[[str, Any], None]
#: Given the values a request would leave, the reason to refuse it, or None to accept.
Refuse = Callable[[SimpleNamespace], 'str | None']


def declare(node: Node, params: Sequence[Param], apply: Apply | None = None,
            refuse: Refuse | None = None) -> SimpleNamespace:
    """Declare every parameter on `node` and return their values as attributes, kept current
    as live parameters change (see the module docstring).

    A value of the wrong type, out of its range (rclpy checks the descriptor's range) or not
    one of its choices stops the node with one clear line (exit code 2), not a traceback.
    A managed node uses `declare_checked` instead: its configure transition fails.
    """
    values, problems = declare_checked(node, params, apply, refuse)
    if problems:
        for problem in problems:
            node.get_logger().fatal(problem)
        raise SystemExit(2)
    return values


def declare_checked(node: Node, params: Sequence[Param], apply: Apply | None = None,
                    refuse: Refuse | None = None) -> tuple[SimpleNamespace, list[str]]:
    """As `declare`, but a bad value is declared with its default and described in the
    returned list of problems instead of stopping the process."""
    values = {}
    problems = []
    for param in params:
        try:
            value = node.declare_parameter(param.name, param.default, param.descriptor()).value
            param.check(value)
        except (ParameterException, ValueError) as error:
            problems.append(f'bad parameter {param.name}: {error}. {param.description}'
                            f'{_allowed(param)}; default {param.default!r}.')
            if not node.has_parameter(param.name):
                node.declare_parameter(param.name, param.default, param.descriptor(),
                                       ignore_override=True)
            value = param.default
        values[param.name] = value
    current = SimpleNamespace(**values)
    table = {param.name: param for param in params}

    def validate(changes) -> SetParametersResult:
        candidate = SimpleNamespace(**vars(current))
        for change in changes:
            if change.name in table:
                try:
                    table[change.name].check(change.value)
                except ValueError as error:
                    return SetParametersResult(successful=False, reason=str(error))
                setattr(candidate, change.name, change.value)
        reason = refuse(candidate) if refuse is not None else None
        return SetParametersResult(successful=reason is None, reason=reason or '')

    def applied(changes) -> None:
        ours = [change for change in changes if change.name in table]
        for change in ours:  # all first: a rule may span parameters set together
            setattr(current, change.name, change.value)
        for change in ours if apply is not None else ():
            apply(change.name, change.value)

    node.add_on_set_parameters_callback(validate)
    node.add_post_set_parameters_callback(applied)
    return current, problems


def _allowed(param: Param) -> str:
    if param.choices:
        return f', one of {param.choices}'
    if param.min is not None and param.max is not None and not isinstance(param.default, bool):
        return f', from {param.min:g} to {param.max:g}'
    return ''


#: One discrete action means the same speeds to the policy and to the driver that executes it
#: (config/ami.yaml sets them once, for every node, under /**).
VELOCITY_PARAMETERS = (
    Param('walk_speed', 0.5, 'Speed (m/s) of walking, the speed of a move without run',
          0.01, 100.0, live=True),
    Param('run_speed', 1.0, 'Speed (m/s) of running; a full VRChat axis and its Run button',
          0.01, 100.0, live=True),
    Param('turn_rate', 1.0, 'Yaw rate (rad/s) of a turn; a full VRChat LookHorizontal',
          0.01, 100.0, live=True),
    Param('jump_speed', 1.0, 'Upward speed (m/s) of a jump; above 0 presses VRChat Jump',
          0.01, 100.0, live=True),
)


def velocity_limits(values: SimpleNamespace) -> VelocityLimits:
    """The VelocityLimits named by VELOCITY_PARAMETERS' values."""
    return VelocityLimits(values.walk_speed, values.run_speed, values.turn_rate,
                          values.jump_speed)


def torch_parameters(what: str) -> tuple[Param, ...]:
    """`device` and `torch_threads`, shared by every node that runs torch on `what`."""
    from ami_nodes.torch_device import DEVICE_CHOICES
    return (Param('device', 'cpu', f'Torch device for {what}', choices=DEVICE_CHOICES),
            Param('torch_threads', 1, 'CPU threads torch may use in this node', 1, 256))

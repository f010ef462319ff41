"""One place for a setting: its name, default, range and description, on a config field.

The core's config dataclasses (PPOConfig, LearnerConfig, ...) declare their user-facing
fields with `setting(...)`. The ROS shell declares one parameter per such field, with the
same name, default, range and description (ami_nodes.ros.params.params_of), and builds the
config back from the parameter values by the same names (config_from). Nothing is renamed on
the way in and no default is written twice. Fields without `setting` are internal constants.

`live=True` marks a setting that is safe to change while the system runs: the node applies
a new value at once (learning rates, loss weights, ...). Everything else is read-only at run
time (model sizes, seeds, buffer sizes: changing them needs new models).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from typing import Any


@dataclass(frozen=True)
class Spec:
    """What a setting means and which values it may take."""

    description: str
    min: float | int | None = None
    max: float | int | None = None
    choices: tuple[str, ...] = ()
    live: bool = False


def setting(default: Any, description: str, min: float | int | None = None,
            max: float | int | None = None, choices: tuple[str, ...] = (),
            live: bool = False) -> Any:
    """A dataclass field that is also a user-facing setting (see the module docstring)."""
    spec = Spec(description, min, max, tuple(choices), live)
    return field(default=default, metadata={'setting': spec})


def settings_of(config: type | Any) -> Iterator[tuple[Field, Spec]]:
    """The (field, spec) pairs of a config dataclass's settings, in declaration order."""
    if not is_dataclass(config):
        raise TypeError(f'{config!r} is not a dataclass')
    for item in fields(config):
        spec = item.metadata.get('setting')
        if spec is not None:
            yield item, spec


def default_of(item: Field) -> Any:
    if item.default is not MISSING:
        return item.default
    if item.default_factory is not MISSING:
        return item.default_factory()
    raise ValueError(f'setting {item.name} has no default')


def assign(name: str, value: Any, *configs: Any) -> bool:
    """Set setting `name` on the first of `configs` that has it; False when none has."""
    for config in configs:
        if any(item.name == name for item, _ in settings_of(config)):
            setattr(config, name, value)
            return True
    return False


def config_from(config_type: type, values: Mapping[str, Any], **overrides: Any) -> Any:
    """`config_type` with every setting taken from `values` by its own name; `overrides`
    (settings or internal fields) win."""
    taken = {item.name: values[item.name] for item, _ in settings_of(config_type)}
    return config_type(**{**taken, **overrides})

"""A copy of the system's parameters file on free local ports, for runs beside other runs.

Tests, benchmarks and evaluations start whole systems next to each other; each needs its own
HTTP and OSC ports and, usually, a few parameters changed.
"""
from __future__ import annotations

import argparse
import socket
from collections.abc import Iterable
from pathlib import Path

import yaml

from ami_nodes import system


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the OS says is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def write_config(path: Path, overrides: dict[str, dict] | None = None,
                 base: Path | None = None) -> Path:
    """`base` (config/ami.yaml) with the world, camera and bridge on free ports, plus
    per-section parameter `overrides`; written to `path`."""
    config = yaml.safe_load((base or system.default_config()).read_text())
    http, udp = free_port(), free_port(socket.SOCK_DGRAM)
    config[system.WORLD_SECTION]['ros__parameters'].update(http_port=http, osc_port=udp)
    config['camera_node']['ros__parameters']['video_device'] = \
        f'http://127.0.0.1:{http}/stream.mjpg'
    config['osc_bridge_node']['ros__parameters']['port'] = udp
    avatar_parameters = free_port(socket.SOCK_DGRAM)   # touches and velocities, world to bridge
    config[system.WORLD_SECTION]['ros__parameters']['avatar_osc_port'] = avatar_parameters
    config['osc_bridge_node']['ros__parameters']['reward_port'] = avatar_parameters
    for section, params in (overrides or {}).items():
        config[section]['ros__parameters'].update(params)
    path.write_text(yaml.safe_dump(config))
    return path


def node_setting(text: str) -> tuple[str, str, object]:
    """`node.key=value` (a command-line argument) as (node, key, the value read as YAML)."""
    name, sep, value = text.partition('=')
    node, dot, key = name.partition('.')
    if not (sep and dot and node and key):
        raise argparse.ArgumentTypeError(f'{text!r} is not NODE.KEY=VALUE')
    return node, key, yaml.safe_load(value)


def node_sections(settings: Iterable[tuple[str, str, object]]) -> dict[str, dict]:
    """(node, key, value) settings as write_config's per-section overrides."""
    sections: dict[str, dict] = {}
    for node, key, value in settings:
        sections.setdefault(node, {})[key] = value
    return sections

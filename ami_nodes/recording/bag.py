"""Recordings as rosbag2 writes them: one MCAP file (ros2 profile) plus metadata.yaml.

No rosbag2 wheel exists, so the pip path writes the same layout itself with the `mcap`
package:

- MCAP profile `ros2`; a schema per type, encoding `ros2msg`, whose text is the type's .msg
  followed by every type it uses, each after a line of 80 '=' and a `MSG: pkg/Type` line,
  depth first, in sorted order, once each (rosbag2_cpp's LocalMessageDefinitionSource).
- channels with message encoding `cdr`, and the bytes as rmw serialized them (CDR): nothing is
  decoded and re-encoded on the way, so a message's header stamp is kept exactly.
- log_time and publish_time are the receive time (ns since the epoch).
- `metadata.yaml` (version 8, what `ros2 bag info DIR` and `ros2 bag play DIR` read first) and
  the same text in an MCAP metadata record named `rosbag2`, so a bare `ros2 bag info x.mcap`
  reads the QoS profiles with the same (integer) encoding. Version 8 is read by Humble's
  decoder (it ignores the newer fields) and by Jazzy and Kilted (integer QoS up to 8).

Pure Python: the ROS shell (ami_nodes.tools.record) subscribes and hands over bytes.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from mcap.writer import CompressionType, Writer

METADATA_VERSION = 8
DELIMITER = '=' * 80
#: rosbag2's pattern for a field's type in a .msg (the same regex, applied to the same text).
_FIELD_TYPE = re.compile(r'(?:^|\n)\s*([a-zA-Z0-9_/]+)(?:\[[^\]]*\])?\s+')
_PRIMITIVES = {'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16',
               'uint16', 'int32', 'uint32', 'int64', 'uint64', 'string'}


class DefinitionNotFound(LookupError):
    """No .msg file for a type under any ament prefix."""


def _share_prefixes() -> list[Path]:
    """Where `share/<package>/msg/*.msg` can be: AMENT_PREFIX_PATH, then this interpreter's
    prefix (where the ROS wheels put them)."""
    paths = [Path(p) for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    return paths + [Path(sys.prefix)]


def _msg_text(type_name: str, prefixes: Sequence[Path]) -> tuple[str, str]:
    """The .msg text of `pkg/Type` or `pkg/msg/Type`, and its package."""
    parts = type_name.split('/')
    if len(parts) not in (2, 3):
        raise DefinitionNotFound(f'type name {type_name!r} is not pkg/Type or pkg/msg/Type')
    package, interface = parts[0], parts[-1]
    for prefix in prefixes:
        path = prefix / 'share' / package / 'msg' / f'{interface}.msg'
        if path.is_file():
            return path.read_text(), package
    raise DefinitionNotFound(f'no {package}/msg/{interface}.msg under {[str(p) for p in prefixes]}')


def message_definition(type_name: str, prefixes: Sequence[Path] | None = None) -> str:
    """The complete ros2msg definition of `type_name` (e.g. 'sensor_msgs/msg/Image')."""
    prefixes = list(prefixes) if prefixes is not None else _share_prefixes()
    seen: set[str] = set()

    def append(name: str) -> str:
        text, package = _msg_text(name, prefixes)
        result = text
        for dependency in sorted(_dependencies(text, package)):
            if dependency not in seen:
                seen.add(dependency)
                result += f'\n{DELIMITER}\nMSG: {dependency}\n' + append(dependency)
        return result

    return append(type_name)


def _dependencies(text: str, package: str) -> set[str]:
    found = set()
    for match in _FIELD_TYPE.finditer(text):
        field_type = match.group(1)
        if field_type not in _PRIMITIVES:
            found.add(field_type if '/' in field_type else f'{package}/{field_type}')
    return found


@dataclass(frozen=True)
class QosOffer:
    """One publisher's QoS, in rosbag2's integer encoding (rmw enum values; ns durations)."""

    history: int = 1  # keep last
    depth: int = 10
    reliability: int = 1  # reliable (2: best effort)
    durability: int = 2  # volatile (1: transient local)
    liveliness: int = 1  # automatic
    deadline_ns: int = 0
    lifespan_ns: int = 0
    liveliness_lease_ns: int = 0

    def as_yaml(self) -> dict:
        def duration(ns: int) -> dict[str, int]:
            return {'sec': ns // 1_000_000_000, 'nsec': ns % 1_000_000_000}
        return {'history': self.history, 'depth': self.depth, 'reliability': self.reliability,
                'durability': self.durability, 'deadline': duration(self.deadline_ns),
                'lifespan': duration(self.lifespan_ns), 'liveliness': self.liveliness,
                'liveliness_lease_duration': duration(self.liveliness_lease_ns),
                'avoid_ros_namespace_conventions': False}


@dataclass
class _Topic:
    name: str
    type_name: str
    offers: tuple[QosOffer, ...]
    channel_id: int
    count: int = 0


@dataclass
class BagWriter:
    """Writes `<directory>/<directory name>_0.mcap` and `metadata.yaml`, as `ros2 bag record -s
    mcap -o <directory>` does. Not thread-safe: call from one thread."""

    directory: Path
    ros_distro: str = field(default_factory=lambda: os.environ.get('ROS_DISTRO', 'kilted'))

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if self.directory.exists() and any(self.directory.iterdir()):
            raise FileExistsError(f'{self.directory} exists and is not empty; ros2 bag record '
                                  f'refuses that too: choose a new -o')
        self.directory.mkdir(parents=True, exist_ok=True)
        self.file_name = f'{self.directory.name}_0.mcap'
        self._writer = Writer(str(self.directory / self.file_name),
                              compression=CompressionType.ZSTD)
        self._writer.start(profile='ros2', library='ami_nodes (mcap python)')
        self._schemas: dict[str, int] = {}
        self._topics: dict[str, _Topic] = {}
        self._first_ns: int | None = None
        self._last_ns = 0
        self._closed = False

    def add_topic(self, topic: str, type_name: str, offers: Iterable[QosOffer] = ()) -> None:
        """Register `topic` of `type_name` ('pkg/msg/Type') before its first message."""
        if topic in self._topics:
            return
        if type_name not in self._schemas:
            self._schemas[type_name] = self._writer.register_schema(
                type_name, 'ros2msg', message_definition(type_name).encode())
        offers = tuple(offers)
        channel = self._writer.register_channel(
            topic, 'cdr', self._schemas[type_name],
            {'offered_qos_profiles': _qos_yaml(offers)})
        self._topics[topic] = _Topic(topic, type_name, offers, channel)

    def write(self, topic: str, cdr: bytes, receive_ns: int) -> None:
        """One message as rmw serialized it, received at `receive_ns` (ns since the epoch)."""
        entry = self._topics[topic]
        self._writer.add_message(channel_id=entry.channel_id, log_time=receive_ns,
                                 publish_time=receive_ns, data=bytes(cdr), sequence=entry.count)
        entry.count += 1
        self._first_ns = receive_ns if self._first_ns is None else min(self._first_ns, receive_ns)
        self._last_ns = max(self._last_ns, receive_ns)

    def counts(self) -> dict[str, int]:
        return {name: topic.count for name, topic in self._topics.items()}

    def close(self) -> Path:
        """Finish the MCAP file and write metadata.yaml; returns the directory."""
        if self._closed:
            return self.directory
        self._closed = True
        metadata = self._metadata()
        # the record holds the bag information itself; metadata.yaml wraps it in one key
        self._writer.add_metadata('rosbag2', {
            'serialized_metadata': yaml.safe_dump(metadata, sort_keys=False),
            'ROS_DISTRO': self.ros_distro})
        self._writer.finish()
        (self.directory / 'metadata.yaml').write_text(yaml.safe_dump(
            {'rosbag2_bagfile_information': metadata}, sort_keys=False))
        return self.directory

    def _metadata(self) -> dict:
        start = self._first_ns or 0
        duration = self._last_ns - start if self._first_ns is not None else 0
        total = sum(topic.count for topic in self._topics.values())
        return {
            'version': METADATA_VERSION,
            'storage_identifier': 'mcap',
            'duration': {'nanoseconds': duration},
            'starting_time': {'nanoseconds_since_epoch': start},
            'message_count': total,
            'topics_with_message_count': [
                {'topic_metadata': {'name': t.name, 'type': t.type_name,
                                    'serialization_format': 'cdr',
                                    'offered_qos_profiles': _qos_yaml(t.offers),
                                    'type_description_hash': ''},
                 'message_count': t.count} for t in self._topics.values()],
            'compression_format': '',
            'compression_mode': '',
            'relative_file_paths': [self.file_name],
            'files': [{'path': self.file_name, 'starting_time': {'nanoseconds_since_epoch': start},
                       'duration': {'nanoseconds': duration}, 'message_count': total}],
            'custom_data': {},
            'ros_distro': self.ros_distro,
        }


def _qos_yaml(offers: Sequence[QosOffer]) -> str:
    """rosbag2's offered_qos_profiles: a YAML list, stored as a string ('' when unknown)."""
    return yaml.safe_dump([offer.as_yaml() for offer in offers], sort_keys=False) if offers else ''


def bag_file(path: Path) -> Path:
    """The MCAP file of a recording: `path` itself, or the one named in DIR/metadata.yaml."""
    path = Path(path)
    if path.is_file():
        return path
    info = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    return path / info['relative_file_paths'][0]

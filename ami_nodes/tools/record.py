"""`ami record`: what `ros2 bag record -s mcap` does, for the pip install (no rosbag2 wheel).

Subscribes to the named topics (all topics when none are named, re-checked twice a second so
late publishers are caught) with raw subscriptions: rmw hands over the CDR bytes, which go
into the MCAP file unchanged. QoS is adapted to the publishers as rosbag2 does: reliable and
transient-local only when every publisher offers it, else best effort / volatile.
"""
from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from pathlib import Path

from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ami_nodes.recording.bag import BagWriter, QosOffer

#: Depth of the recorder's subscriptions: room for a burst while the writer compresses a chunk.
RECORD_DEPTH = 100


def message_class(type_name: str) -> type:
    """'sensor_msgs/msg/Image' -> sensor_msgs.msg.Image."""
    package, kind, name = type_name.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def offer_of(profile: QoSProfile) -> QosOffer:
    return QosOffer(history=int(profile.history.value), depth=int(profile.depth),
                    reliability=int(profile.reliability.value),
                    durability=int(profile.durability.value),
                    liveliness=int(profile.liveliness.value),
                    deadline_ns=profile.deadline.nanoseconds,
                    lifespan_ns=profile.lifespan.nanoseconds,
                    liveliness_lease_ns=profile.liveliness_lease_duration.nanoseconds)


def request_for(offers: Sequence[QosOffer]) -> QoSProfile:
    """The subscription QoS that matches every offer (rosbag2's adapt_request_to_offers)."""
    reliable = bool(offers) and all(o.reliability == ReliabilityPolicy.RELIABLE.value
                                    for o in offers)
    latched = bool(offers) and all(o.durability == DurabilityPolicy.TRANSIENT_LOCAL.value
                                   for o in offers)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=RECORD_DEPTH,
                      reliability=ReliabilityPolicy.RELIABLE if reliable
                      else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                      else DurabilityPolicy.VOLATILE)


class Recorder:
    """Subscribes `node` to `topics` (None: every topic) and writes what arrives to `bag`."""

    def __init__(self, node: Node, bag: BagWriter, topics: Sequence[str] | None) -> None:
        self._node = node
        self._bag = bag
        self._wanted = {self._resolve(t) for t in topics} if topics else None
        self._subscriptions: dict[str, object] = {}
        self._timer = node.create_timer(0.5, self.discover)
        self.discover()

    def _resolve(self, topic: str) -> str:
        return self._node.resolve_topic_name(topic)

    def discover(self) -> None:
        for name, types in self._node.get_topic_names_and_types():
            if name in self._subscriptions or (self._wanted is not None
                                               and name not in self._wanted):
                continue
            offers = [offer_of(info.qos_profile)
                      for info in self._node.get_publishers_info_by_topic(name)]
            if not offers:
                continue  # only subscribers so far: wait for a publisher's QoS
            self._bag.add_topic(name, types[0], offers)
            self._subscriptions[name] = self._node.create_subscription(
                message_class(types[0]), name,
                lambda data, topic=name: self._bag.write(topic, data, time.time_ns()),
                request_for(offers), raw=True)
            self._node.get_logger().info(f'recording {name} ({types[0]})')

    def missing(self) -> set[str]:
        """Named topics not subscribed yet (no publisher seen)."""
        return (self._wanted or set()) - set(self._subscriptions)


def record(node: Node, spin_once, directory: Path, topics: Sequence[str] | None,
           duration_s: float) -> dict[str, int]:
    """Record until `duration_s` passed since the first message (0: until Ctrl-C); returns
    messages per topic."""
    bag = BagWriter(Path(directory))
    recorder = Recorder(node, bag, topics)
    deadline = float('inf')
    try:
        while time.monotonic() < deadline:
            spin_once(0.1)
            if duration_s > 0 and deadline == float('inf') and any(bag.counts().values()):
                deadline = time.monotonic() + duration_s
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # Ctrl-C or SIGTERM: what was received is written below
    finally:
        bag.close()
    if recorder.missing():
        node.get_logger().warning(f'never saw a publisher on {sorted(recorder.missing())}')
    return bag.counts()

"""Hot-path latency: camera capture stamp -> cmd_vel, and -> OSC datagram sent.

Every hot-path message carries its frame's capture stamp, so each hop is `now - stamp`:
- cmd_vel_received: when our probe's callback ran (what a robot driver subscribing would see);
- cmd_vel_published: policy_node's own /policy_node/latency_ms, taken right after publishing;
- osc_sent: osc_bridge_node's /osc_bridge_node/latency_ms, taken right after the UDP send.
"""
from __future__ import annotations

from bench.stats import summary
from bench.system_session import Records, between

FROZEN_ABOVE = 1e9  # perception_node's train_every when train_online is false


def _train_every(values: list[float]) -> float | None:
    """The median K perception trained at (None: frozen, or nothing reported)."""
    values = sorted(values)
    if not values or values[len(values) // 2] > FROZEN_ABOVE:
        return None
    return values[len(values) // 2]


def latencies(records: Records, span: tuple[float, float]) -> dict:
    commands = between(records.cmd_vel, span)
    versions = [v for _, v in between(records.versions, span)]
    train_every = [v for _, v in between(records.train_every, span)]
    return {
        'seconds': round(span[1] - span[0], 1),
        'cmd_vel_received_ms': summary((now - stamp) / 1e6 for _, now, stamp in commands),
        'cmd_vel_published_ms': summary(v for _, v in between(records.policy_latency, span)),
        'osc_sent_ms': summary(v for _, v in between(records.osc_latency, span)),
        'perception_train_every_median': _train_every(train_every),
        'policy_versions_applied': len(set(versions)),
    }

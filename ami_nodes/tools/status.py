"""Collect /diagnostics from every node and render it as a status line or a screen."""
from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node

LEVEL_NAMES = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}


def level_of(status: DiagnosticStatus) -> int:
    level = status.level
    return level[0] if isinstance(level, (bytes, bytearray)) else int(level)


class StatusCollector:
    """The newest diagnostic status of each node, with the time it arrived.

    Anyone may publish on /diagnostics: at most MAX_NAMES names are kept, so a flood of
    made-up names cannot grow the table without bound.
    """

    MAX_NAMES = 256

    def __init__(self, node: Node) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[float, DiagnosticStatus]] = {}
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        now = time.monotonic()
        with self._lock:
            for status in msg.status:
                if status.name in self._latest or len(self._latest) < self.MAX_NAMES:
                    self._latest[status.name] = (now, status)

    def snapshot(self) -> dict[str, tuple[float, dict[str, str], int, str]]:
        """name -> (age in s, values, level, message)."""
        now = time.monotonic()
        with self._lock:
            return {name: (now - t, {kv.key: kv.value for kv in s.values}, level_of(s), s.message)
                    for name, (t, s) in self._latest.items()}


def _get(snapshot: dict, node: str, key: str, default: str = '-') -> str:
    entry = snapshot.get(node)
    return entry[1].get(key, default) if entry else default


def format_line(snapshot: dict, elapsed_s: float, supervision: dict | None = None) -> str:
    """One line for the launcher's console, every few seconds (restarts when there were)."""
    g = lambda node, key: _get(snapshot, node, key)  # noqa: E731
    line = (f'[status {elapsed_s:5.0f}s] camera {g("camera_node", "rate_hz")} Hz'
            f' | perception loss {g("perception_node", "aux_loss")} K={g("perception_node", "train_every")}'
            f' step {g("perception_node", "step_ms_p50")} ms'
            f' | policy v{g("policy_node", "policy_version")} {g("policy_node", "rate_hz")} Hz'
            f' latency p50 {g("policy_node", "latency_ms_p50")} p99 {g("policy_node", "latency_ms_p99")} ms'
            f' | learner v{g("learner_node", "version")} updates {g("learner_node", "updates")}'
            f' reward {g("learner_node", "intrinsic_reward")}'
            f' | osc {g("osc_bridge_node", "datagrams_sent")} sent')
    restarts = {key.split('/', 1)[1]: n for key, n in (supervision or {}).items()
                if key.startswith('restarts/') and n}
    if restarts:
        line += ' | restarts ' + ' '.join(f'{name} {n}' for name, n in restarts.items())
    if supervision and supervision.get('down'):
        line += f" | down: {supervision['down']}"
    return line


def format_screen(snapshot: dict, stale_after_s: float = 3.0) -> str:
    """The `ami status` screen: every node, its health and the numbers that matter."""
    if not snapshot:
        return ('no node is publishing /diagnostics: is the system running, with the same '
                'ROS_DOMAIN_ID as this terminal?')
    lines = []
    for name in sorted(snapshot):
        age, values, level, message = snapshot[name]
        state = 'STALE' if age > stale_after_s else LEVEL_NAMES.get(level, str(level))
        lines.append(f'{name:<18} {state:<6} {message}')
        shown = {k: v for k, v in values.items() if v not in ('', 'nan')}
        body = '  '.join(f'{k}={v}' for k, v in shown.items())
        lines.append(f'{"":<18} {body}')
    return '\n'.join(lines)

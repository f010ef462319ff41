"""Collect /diagnostics from every node and render it as a status line or a screen.

/diagnostics is global (as ROS expects), so several systems may publish on it: each status
is keyed by its node's fully qualified name (hardware_id), and a view keeps one namespace.
"""
from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node

from ami_nodes import system

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
                name = status.hardware_id or system.join(status.name)
                if name in self._latest or len(self._latest) < self.MAX_NAMES:
                    self._latest[name] = (now, status)

    def snapshot(self, namespace: str = '/') -> dict[str, tuple[float, dict[str, str], int, str]]:
        """fully qualified node name -> (age in s, values, level, message), for the nodes
        in `namespace` and below it."""
        now = time.monotonic()
        root = system.join(namespace)
        with self._lock:
            return {name: (now - t, {kv.key: kv.value for kv in s.values}, level_of(s), s.message)
                    for name, (t, s) in self._latest.items()
                    if root == '/' or name.startswith(root + '/')}


def _get(snapshot: dict, node: str, key: str, default: str = '-') -> str:
    """A node's reported value; `default` when it has none yet (missing, or NaN before a first
    update)."""
    entry = snapshot.get(node)
    value = entry[1].get(key, default) if entry else default
    return default if value == 'nan' else value


def format_line(snapshot: dict, elapsed_s: float, supervision: dict | None = None,
                namespace: str = '/', robot_namespaces: tuple[str, ...] = ('/',)) -> str:
    """The launcher's console every few seconds: the learner (and restarts when there were),
    then one line per robot."""
    learner = system.join(namespace, system.LEARNER)
    epsilon = _get(snapshot, learner, 'epsilon')   # branching_q's, absent for PPO
    progress = (f' epsilon {epsilon} loss {_get(snapshot, learner, "q_loss")}'
                f' replay {_get(snapshot, learner, "replay_size")}' if epsilon != '-'
                else f' reward {_get(snapshot, learner, "intrinsic_reward")}')
    line = (f'[status {elapsed_s:5.0f}s] learner v{_get(snapshot, learner, "version")}'
            f' updates {_get(snapshot, learner, "updates")}'
            f' experience {_get(snapshot, learner, "experience_hz")} Hz{progress}')
    restarts = {key.split('/', 1)[1]: n for key, n in (supervision or {}).items()
                if key.startswith('restarts/') and n}
    if restarts:
        line += ' | restarts ' + ' '.join(f'{name} {n}' for name, n in restarts.items())
    if supervision and supervision.get('down'):
        line += f" | down: {supervision['down']}"
    lines = [line]
    for stack in robot_namespaces:
        g = lambda node, key, stack=stack: _get(snapshot, system.join(stack, node), key)  # noqa: E731
        label = stack.rsplit('/', 1)[-1] if len(robot_namespaces) > 1 else 'robot'
        # held_bandit's progress (holds chosen, places in its window); absent in other modes
        holds = g('policy_node', 'bandit_holds')
        explorer = f' | explorer {holds} holds {g("policy_node", "places_in_window")} places' if holds != '-' else ''
        lines.append(
            f'  {label}: camera {g("camera_node", "rate_hz")} Hz'
            f' | perception loss {g("perception_node", "aux_loss")} K={g("perception_node", "train_every")}'
            f' step {g("perception_node", "step_ms_p50")} ms'
            f' | policy v{g("policy_node", "policy_version")} {g("policy_node", "rate_hz")} Hz'
            f' latency p50 {g("policy_node", "latency_ms_p50")} p99 {g("policy_node", "latency_ms_p99")} ms'
            f'{explorer} | osc {g("osc_bridge_node", "datagrams_sent")} sent')
    return '\n'.join(lines)


def format_screen(snapshot: dict, stale_after_s: float = 3.0) -> str:
    """The `ami status` screen: every node, its health and the numbers that matter."""
    if not snapshot:
        return ('no node is publishing /diagnostics: is the system running, with the same '
                'ROS_DOMAIN_ID (and --namespace) as this terminal?')
    lines = []
    width = max(18, *(len(name) + 1 for name in snapshot))
    for name in sorted(snapshot):
        age, values, level, message = snapshot[name]
        state = 'STALE' if age > stale_after_s else LEVEL_NAMES.get(level, str(level))
        lines.append(f'{name:<{width}} {state:<6} {message}')
        shown = {k: v for k, v in values.items() if v not in ('', 'nan')}
        body = '  '.join(f'{k}={v}' for k, v in shown.items())
        lines.append(f'{"":<{width}} {body}')
    return '\n'.join(lines)

"""Save, pause and resume a running system through its std_srvs services."""
from __future__ import annotations

import json
import re
import threading
import time

from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from ami_nodes.ros import qos

LEARNER = '/learner_node'
#: Services that pause or resume acting: the actor stops, and the bridge releases every input.
ACTING_SERVICES = ('/policy_node/set_acting', '/osc_bridge_node/set_enabled')
LEARNING_SERVICES = (f'{LEARNER}/set_learning',)


class Control:
    """Service calls against a running system; the node must be spun by someone else."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._results: dict[str, dict] = {}
        self._result_arrived = threading.Condition()
        node.create_subscription(String, f'{LEARNER}/checkpoint_result', self._on_result,
                                 qos.LATCHED)

    def _on_result(self, msg: String) -> None:
        try:
            result = json.loads(msg.data)
        except (ValueError, RecursionError):
            result = None
        if not (isinstance(result, dict) and isinstance(result.get('name'), str)
                and isinstance(result.get('ok'), bool)):
            self._node.get_logger().error(f'ignored a malformed checkpoint result: '
                                          f'{msg.data[:200]!r}', throttle_duration_sec=5.0)
            return
        with self._result_arrived:
            self._results[result['name']] = result
            self._result_arrived.notify_all()

    def _call(self, srv_type, name: str, request, timeout_s: float) -> str:
        client = self._node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout_s):
                return f'{name}: not available (is the node running?)'
            future = client.call_async(request)
            deadline = time.monotonic() + timeout_s
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            if not future.done():
                return f'{name}: no answer within {timeout_s:g} s'
            response = future.result()
            return f"{name}: {response.message or ('ok' if response.success else 'failed')}"
        finally:
            self._node.destroy_client(client)

    def set_enabled(self, services: tuple[str, ...], enabled: bool,
                    timeout_s: float = 5.0) -> list[str]:
        return [self._call(SetBool, name, SetBool.Request(data=enabled), timeout_s)
                for name in services]

    def save(self, timeout_s: float = 30.0) -> tuple[bool, str]:
        """Ask the learner for a checkpoint and wait until it is published whole.

        Returns (True, its folder) or (False, what went wrong).
        """
        answer = self._call(Trigger, f'{LEARNER}/save', Trigger.Request(), 5.0)
        started = re.search(r'saving checkpoint (\S+)', answer)
        if started is None:
            return False, answer
        name = started.group(1)
        with self._result_arrived:
            if not self._result_arrived.wait_for(lambda: name in self._results, timeout_s):
                return False, (f'{answer}, but it was not confirmed within {timeout_s:g} s: '
                               f'see the learner_node log')
            result = self._results[name]
        return (True, str(result.get('path'))) if result['ok'] else (
            False, str(result.get('error')))

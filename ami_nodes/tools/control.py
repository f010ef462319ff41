"""Save, pause and resume a running system: lifecycle transitions and std_srvs services."""
from __future__ import annotations

import json
import re
import threading
import time

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from ami_nodes.ros import qos

LEARNER = '/learner_node'
#: Services that pause or resume acting: the actor stops, and the bridge releases every input.
ACTING_SERVICES = ('/policy_node/set_acting', '/osc_bridge_node/set_enabled')
LEARNING_SERVICES = (f'{LEARNER}/set_learning',)
#: The managed nodes behind those services: `ami pause` deactivates them, `ami resume`
#: activates them (lifecycle_msgs/srv/ChangeState on /<node>/change_state).
ACTING_NODES = ('/policy_node', '/osc_bridge_node')
LEARNING_NODES = (LEARNER,)
#: transition id -> (its name, the state it leads to)
TRANSITIONS = {Transition.TRANSITION_ACTIVATE: ('activate', State.PRIMARY_STATE_ACTIVE),
               Transition.TRANSITION_DEACTIVATE: ('deactivate', State.PRIMARY_STATE_INACTIVE)}


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
        response = self._request(srv_type, name, request, timeout_s)
        if isinstance(response, str):
            return response
        return f"{name}: {response.message or ('ok' if response.success else 'failed')}"

    def _request(self, srv_type, name: str, request, timeout_s: float):
        """The service's response, or a line saying why there is none."""
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
            return future.result()
        finally:
            self._node.destroy_client(client)

    def transition(self, nodes: tuple[str, ...], transition_id: int,
                   timeout_s: float = 10.0) -> list[str]:
        """Take each managed node through a lifecycle transition (as `ros2 lifecycle set`),
        one line each; a node already in the goal state is left as it is."""
        label, goal = TRANSITIONS[transition_id]
        lines = []
        for node in nodes:
            state = self._request(GetState, f'{node}/get_state', GetState.Request(), timeout_s)
            if isinstance(state, str):
                lines.append(state)
                continue
            if state.current_state.id == goal:
                lines.append(f'{node}: {state.current_state.label} already')
                continue
            answer = self._request(ChangeState, f'{node}/change_state', ChangeState.Request(
                transition=Transition(id=transition_id)), timeout_s)
            if isinstance(answer, str):
                lines.append(answer)
            else:
                lines.append(f'{node}: {label} ' + ('ok' if answer.success else
                                                    f'failed (it was {state.current_state.label}'
                                                    '; see its log and /diagnostics)'))
        return lines

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

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

from ami_nodes import system
from ami_nodes.ros import qos, services
from ami_nodes.ros.checkpointing import SAVE_BUSY

#: Services that pause or resume acting: the actor stops, and the bridge releases every input.
ACTING_SERVICES = ('policy_node/set_acting', 'osc_bridge_node/set_enabled')
LEARNING_SERVICES = (f'{system.LEARNER}/set_learning',)
#: The managed nodes behind those services: `ami pause` deactivates them, `ami resume`
#: activates them (lifecycle_msgs/srv/ChangeState on <node>/change_state).
ACTING_NODES = ('policy_node', 'osc_bridge_node')
#: transition id -> (its name, the state it leads to)
TRANSITIONS = {Transition.TRANSITION_ACTIVATE: ('activate', State.PRIMARY_STATE_ACTIVE),
               Transition.TRANSITION_DEACTIVATE: ('deactivate', State.PRIMARY_STATE_INACTIVE)}


class Control:
    """Service calls against a running system; the node must be spun by someone else.

    The system lives in `namespace`; its robots in `robot_namespaces` (the namespace itself
    for a single robot, `<namespace>/robot_<i>` for a fleet).
    """

    def __init__(self, node: Node, namespace: str = '/',
                 robot_namespaces: tuple[str, ...] | None = None) -> None:
        self._node = node
        self._namespace = system.join(namespace)
        self._robots = robot_namespaces or (self._namespace,)
        self._learner = system.join(namespace, system.LEARNER)
        self._results: dict[str, dict] = {}
        self._result_arrived = threading.Condition()
        node.create_subscription(String, f'{self._learner}/checkpoint_result', self._on_result,
                                 qos.LATCHED)

    def services(self, what: str) -> tuple[str, ...]:
        """Absolute names of the `acting` or `learning` services of this system."""
        if what == 'learning':
            return tuple(system.join(self._namespace, name) for name in LEARNING_SERVICES)
        return tuple(system.join(robot, name) for robot in self._robots
                     for name in ACTING_SERVICES)

    def nodes(self, what: str) -> tuple[str, ...]:
        """Absolute names of the managed nodes that do the `acting` or the `learning`."""
        if what == 'learning':
            return (self._learner,)
        return tuple(system.join(robot, name) for robot in self._robots for name in ACTING_NODES)

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

    def _request(self, srv_type, name: str, request, timeout_s: float, probe=None):
        """The service's response, or a line saying why there is none (services.call)."""
        return services.call(self._node, srv_type, name, request, services.sleeping_wait,
                             timeout_s, probe=probe)

    def transition(self, what: tuple[str, ...], transition_id: int,
                   timeout_s: float = 10.0) -> list[str]:
        """Take the managed nodes of `what` ('acting', 'learning') through a lifecycle
        transition, as `ros2 lifecycle set` does, one line each; a node already in the goal
        state is left as it is."""
        label, goal = TRANSITIONS[transition_id]
        lines = []
        for node in (node for part in what for node in self.nodes(part)):
            state = self._request(GetState, f'{node}/get_state', GetState.Request(), timeout_s)
            if isinstance(state, str):
                lines.append(state)
                continue
            if state.current_state.id == goal:
                lines.append(f'{node}: {state.current_state.label} already')
                continue
            answer = self._request(ChangeState, f'{node}/change_state', ChangeState.Request(
                transition=Transition(id=transition_id)), timeout_s,
                probe=services.lifecycle_probe())
            if isinstance(answer, str):
                lines.append(answer)
            else:
                lines.append(f'{node}: {label} ' + ('ok' if answer.success else
                                                    f'failed (it was {state.current_state.label}'
                                                    '; see its log and /diagnostics)'))
        return lines

    def set_enabled(self, what: tuple[str, ...], enabled: bool,
                    timeout_s: float = 5.0) -> list[str]:
        """Pause or resume `what`: any of 'acting' and 'learning'."""
        return [self._call(SetBool, name, SetBool.Request(data=enabled), timeout_s)
                for part in what for name in self.services(part)]

    def save(self, timeout_s: float = 30.0) -> tuple[bool, str]:
        """Ask the learner for a checkpoint and wait until it is published whole.

        Returns (True, its folder) or (False, what went wrong).
        """
        deadline = time.monotonic() + timeout_s
        while True:  # a save under way (a periodic one, or an unanswered copy of this request)
            answer = self._call(Trigger, f'{self._learner}/save', Trigger.Request(), 5.0)
            if SAVE_BUSY not in answer or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
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

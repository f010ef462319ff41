"""Service calls that survive lost replies: idempotent requests are sent again, lifecycle
transitions wait behind a harmless probe and are sent once."""
from __future__ import annotations

import time

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.task import Future

from ami_nodes.ros import services


class LosingClient:
    """A client whose first `lost` requests are never answered, as when a server has not yet
    discovered the client's reply reader; the rest are answered at once."""

    def __init__(self, lost: int) -> None:
        self.lost = lost
        self.sent: list[object] = []

    def call_async(self, request) -> Future:
        self.sent.append(request)
        future = Future()
        if len(self.sent) > self.lost:
            future.set_result(('answer to', len(self.sent)))
        return future


def no_wait(predicate, timeout_s: float) -> bool:
    return predicate()


def test_an_unanswered_request_is_sent_again_until_answered():
    client = LosingClient(lost=3)
    assert services.answer(client, 'request', no_wait, timeout_s=30.0) == ('answer to', 4)
    assert client.sent == ['request'] * 4


def test_answer_gives_up_at_its_timeout():
    client = LosingClient(lost=10**9)
    assert services.answer(client, 'request', services.sleeping_wait, timeout_s=0.3) is None
    assert len(client.sent) == 1  # the resend comes only after RESEND_AFTER_S


class Counting(LifecycleNode):
    def __init__(self) -> None:
        super().__init__('probed_node')
        self.configured = 0

    def on_configure(self, state) -> TransitionCallbackReturn:
        self.configured += 1
        return TransitionCallbackReturn.SUCCESS


def test_a_transition_is_taken_once_behind_the_probe():
    rclpy.init()
    try:
        node, caller = Counting(), rclpy.create_node('caller')
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.add_node(caller)

        def spin_until(predicate, timeout_s: float) -> bool:
            deadline = time.monotonic() + timeout_s
            while not predicate() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
            return predicate()

        probe = services.call(caller, ChangeState, '/probed_node/change_state',
                              services.lifecycle_probe(), spin_until, 10.0)
        assert probe.success is False and node.configured == 0
        answer = services.call(caller, ChangeState, '/probed_node/change_state',
                               ChangeState.Request(transition=Transition(
                                   id=Transition.TRANSITION_CONFIGURE)),
                               spin_until, 10.0, probe=services.lifecycle_probe())
        assert answer.success and node.configured == 1
        state = services.call(caller, GetState, '/probed_node/get_state', GetState.Request(),
                              spin_until, 10.0)
        assert state.current_state.label == 'inactive'
        absent = services.call(caller, GetState, '/nobody/get_state', GetState.Request(),
                               spin_until, 0.5, discovery_timeout_s=0.5)
        assert absent == '/nobody/get_state: not available (is the node running?)'
        executor.shutdown()
        node.destroy_node()
        caller.destroy_node()
    finally:
        rclpy.shutdown()


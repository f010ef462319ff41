"""Service calls that survive DDS discovery on a loaded machine.

`wait_for_service` says the client's request reaches the server, not that the server has
discovered the client's reply reader. rmw_fastrtps gives a server 100 ms to discover it and
then drops the reply (ros2/rmw_fastrtps#390, #467), and the caller waits forever. On two busy
cores discovery takes longer than that, so a call here sends again what went unanswered:
- an idempotent request (GetState, SetBool, SetParameters, Trigger save) is itself sent
  again;
- a request that must not run twice (a lifecycle ChangeState) waits behind a probe: a harmless
  request, sent until one is answered, after which the reply path is known to work and the
  real request is sent once.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from rclpy.node import Node

#: How long a fresh process may take to discover a service before calling it absent. Discovery
#: of a graph of a dozen nodes took over 5 s on a loaded 2-core machine (CI, two systems).
DISCOVERY_TIMEOUT_S = 20.0
#: An unanswered request is sent again after this long (an answer normally takes milliseconds).
RESEND_AFTER_S = 2.0

#: wait(predicate, timeout_s) -> whether predicate became true in time. A caller that spins its
#: node itself spins here; one whose node another thread spins sleeps.
Wait = Callable[[Callable[[], bool], float], bool]


def sleeping_wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """A Wait for a node that another thread spins."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def lifecycle_probe():
    """A ChangeState request no lifecycle node can take (an unknown transition label): it is
    answered with success=False and changes nothing (rcl_lifecycle logs a warning)."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    return ChangeState.Request(transition=Transition(label='ami_probe_no_such_transition'))


def call(node: Node, srv_type, name: str, request, wait: Wait, timeout_s: float,
         probe=None, discovery_timeout_s: float = DISCOVERY_TIMEOUT_S):
    """The response of service `name` to `request`, or a line saying why there is none.

    Without `probe`, `request` must be safe to repeat and is sent again every RESEND_AFTER_S
    until answered. With one, `probe` is sent so until answered and `request` then once.
    `timeout_s` bounds each answer; finding the service may take `discovery_timeout_s`.
    """
    client = node.create_client(srv_type, name)
    try:
        if not client.wait_for_service(timeout_sec=max(timeout_s, discovery_timeout_s)):
            return f'{name}: not available (is the node running?)'
        if probe is None:
            response = answer(client, request, wait, timeout_s)
        elif answer(client, probe, wait, timeout_s) is None:
            response = None
        else:  # the reply path works: the request has its whole timeout
            future = client.call_async(request)
            response = future.result() if wait(future.done, timeout_s) else None
        return f'{name}: no answer within {timeout_s:g} s' if response is None else response
    finally:
        node.destroy_client(client)


def answer(client, request, wait: Wait, timeout_s: float):
    """Send `request` on `client` every RESEND_AFTER_S until one copy is answered: the
    response, or None after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    futures = []
    while (left := deadline - time.monotonic()) > 0:
        futures.append(client.call_async(request))
        if wait(lambda: any(f.done() for f in futures), min(RESEND_AFTER_S, left)):
            return next(f for f in futures if f.done()).result()
    return None

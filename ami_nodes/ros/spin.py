"""Start a node, spin it, and exit 0 on Ctrl-C or SIGTERM, as launch and the launcher expect."""
from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def run_node(make_node: Callable[[], Node], args: list[str] | None = None) -> None:
    """Create the node, spin until shutdown, then call its `close()` (if any) and exit 0.

    `close()` runs after spinning stopped, so a node can still release actuators or write a
    final checkpoint when it is asked to stop.
    """
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    try:
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, 'close', None)
            if close is not None:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()

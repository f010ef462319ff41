"""Start a node, spin it, and exit 0 on Ctrl-C or SIGTERM, as launch and the launcher expect.

Two things make a clean stop harder than it looks:

- rclpy's signal handler shuts the context down from its own thread and then lets Python
  raise KeyboardInterrupt in the main thread. A callback running at that moment can fail on
  the shut-down context (a publish, a timer) before the KeyboardInterrupt arrives, so an
  exception that escapes spinning after shutdown began is part of stopping, not a crash.
- `ros2 launch` forwards SIGINT to its children when its stdin is not a terminal, and a
  person presses Ctrl-C twice: a second SIGINT must not interrupt the cleanup (releasing every
  OSC input, joining the training thread), so SIGINT and SIGTERM are ignored while it runs.
  A cleanup that hangs is still ended by the supervisor's SIGKILL.
"""
from __future__ import annotations

import signal
import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_node(make_node: Callable[[], Node], args: list[str] | None = None) -> None:
    """Create the node, spin until shutdown, then call its `close()` (if any) and exit 0.

    `close()` runs after spinning stopped, so a node can still release actuators or write a
    final checkpoint when it is asked to stop. A managed node (ami_nodes.ros.lifecycle) first
    configures and activates itself when its `autostart` parameter says so; if that fails the
    process exits with code 2, the reason logged.
    """
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    try:
        node = make_node()
        autostart = getattr(node, 'autostart', None)
        if autostart is not None and not autostart():
            node.get_logger().fatal(f'could not start: {node.failure}')
            raise SystemExit(2)
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise  # a real failure while running: the supervisor restarts the node
        # else: a callback cut short by the shutdown that a stop signal began
    finally:
        ignore_stop_signals()
        _clean_up(node)


def ignore_stop_signals() -> None:
    """From here on, SIGINT and SIGTERM cannot interrupt this process's cleanup."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _clean_up(node: Node | None) -> None:
    """close(), destroy, shut down, each once; a stop signal that arrived just before the
    signals were ignored can interrupt one step, which then runs again."""
    steps = []
    if node is not None:
        close = getattr(node, 'close', None)
        if close is not None:
            steps.append(close)
        steps.append(node.destroy_node)
    steps.append(lambda: rclpy.ok() and rclpy.shutdown())
    for step in steps:
        try:
            step()
        except KeyboardInterrupt:
            step()

"""Publish a node's health on /diagnostics once a second, in diagnostic_msgs form."""
from __future__ import annotations

import math
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from ami_nodes.ros.errors import InputErrors

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR

#: What a node reports: level, one-line message, key values.
Report = tuple[int, str, dict[str, object]]


def format_value(value: object) -> str:
    """Numbers with sensible precision, everything else as text."""
    if isinstance(value, float):
        return 'nan' if math.isnan(value) else f'{value:.4g}'
    return str(value)


class DiagnosticsPublisher:
    """Calls `report()` every `period_s` and publishes it on /diagnostics.

    Every node reports the inputs it refused (`rejected_inputs`, `last_rejected`) the same way:
    pass the node's InputErrors (a publisher without one counts only its own failures).
    """

    def __init__(self, node: Node, report: Callable[[], Report],
                 errors: InputErrors | None = None, period_s: float = 1.0) -> None:
        self._node = node
        self._report = report
        self._errors = errors = errors or InputErrors(node.get_logger())
        self._publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._timer = node.create_timer(period_s, errors.guard('diagnostics', self.publish))

    def publish(self) -> None:
        level, message, values = self._report()
        values = {**values, 'rejected_inputs': self._errors.count,
                  'last_rejected': self._errors.last}
        status = DiagnosticStatus(
            level=level, name=f'{self._node.get_name()}', message=message,
            hardware_id=self._node.get_fully_qualified_name(),
            values=[KeyValue(key=k, value=format_value(v)) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._publisher.publish(array)

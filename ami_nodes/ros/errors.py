"""Refuse bad input and go on: count it, log it with the logger's own throttle, never crash.

Every input of a node is untrusted: anyone on the ROS network can publish on its topics and
call its services. `InputErrors.report` is the one way a node refuses an input it validated;
`InputErrors.guard` wraps every subscription, service and timer callback, so an exception
that escapes one (a bug, or a message nobody thought of) is counted and logged the same way
instead of killing the node.
"""
from __future__ import annotations

import functools
import threading
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from rclpy.impl.rcutils_logger import RcutilsLogger

Callback = TypeVar('Callback', bound=Callable[..., Any])
#: Longest reason logged and shown on /diagnostics: hostile input can make error texts huge.
MAX_REASON_CHARS = 300


class ConfigureError(Exception):
    """Why a managed node cannot be configured (a bad checkpoint, a bad parameter): its
    configure transition fails with this reason logged, and the process stays alive."""


class InputErrors:
    """Counts refused inputs (shown on /diagnostics as rejected_inputs) and logs them.

    Each source (a topic, service or timer) logs through its own child logger, so the
    logger's throttle keeps a flood of one bad input from hiding the first of another.
    """

    def __init__(self, logger: RcutilsLogger, throttle_s: float = 5.0) -> None:
        self._logger = logger
        self._throttle_s = throttle_s
        self._loggers: dict[str, RcutilsLogger] = {}
        self._lock = threading.Lock()  # reports come from the executor and worker threads
        self.count = 0
        self.last = ''

    def report(self, source: str, text: str) -> None:
        """Count one refused input from `source` and log why (at most once per throttle_s)."""
        if len(text) > MAX_REASON_CHARS:
            text = f'{text[:MAX_REASON_CHARS]}... ({len(text)} characters)'
        line = f'{source}: {text}'
        with self._lock:
            self.count += 1
            self.last = line
            logger = self._loggers.get(source)
            if logger is None:
                name = ''.join(c if c.isalnum() or c == '_' else '_' for c in source).strip('_')
                logger = self._loggers[source] = self._logger.get_child(name or 'input')
        logger.error(f'refused {line} (repeats of this source are logged at most every '
                     f'{self._throttle_s:g} s; count on /diagnostics rejected_inputs)',
                     throttle_duration_sec=self._throttle_s)

    def guard(self, source: str, callback: Callback) -> Callback:
        """`callback`, but an exception escaping it is reported instead of raised.

        A service callback (request, response) then answers with its response, marked
        unsuccessful when the response type has `success`.
        """
        @functools.wraps(callback)  # keeps the signature rclpy inspects (MessageInfo, TimerInfo)
        def guarded(*args: Any) -> Any:
            try:
                return callback(*args)
            except Exception as error:  # noqa: BLE001 - the point: nothing escapes a callback
                where = traceback.extract_tb(error.__traceback__)[-1]
                self.report(source, f'{type(error).__name__}: {error} '
                                    f'(at {where.filename.rsplit("/", 1)[-1]}:{where.lineno})')
                if len(args) == 2 and hasattr(args[1], 'success'):
                    args[1].success = False
                    args[1].message = f'failed: {type(error).__name__}: {error}'
                    return args[1]
                return args[1] if len(args) == 2 else None
        return guarded  # type: ignore[return-value]

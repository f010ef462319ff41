"""Log bad input clearly without flooding the console: each new message at once, repeats throttled."""
from __future__ import annotations

import time

from rclpy.impl.rcutils_logger import RcutilsLogger


class InputErrors:
    """Counts refused inputs and logs them; the node keeps running."""

    def __init__(self, logger: RcutilsLogger, repeat_every_s: float = 5.0) -> None:
        self._logger = logger
        self._repeat_every_s = repeat_every_s
        self._last_logged = 0.0
        self.count = 0
        self.last = ''

    def report(self, text: str) -> None:
        self.count += 1
        now = time.monotonic()
        if text != self.last or now - self._last_logged >= self._repeat_every_s:
            self._logger.error(text)
            self._last_logged = now
        self.last = text

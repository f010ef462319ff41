"""Training curves for TensorBoard that never take the node down with them.

One folder per run and node: `root/<run_name>/<node>/`. Give every node of one launch the
same run_name so TensorBoard groups them. The step is the caller's: after a resume, pass the
step restored from the checkpoint (and `resume_step=` that step, so TensorBoard drops the
points the crashed run logged after the checkpoint) and the curves carry on where they were.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

import numpy as np

_log = logging.getLogger(__name__)


def default_run_name() -> str:
    """UTC start time, the same format as checkpoint names."""
    return time.strftime('%Y-%m-%d_%H-%M-%S', time.gmtime())


class TrainingLog:
    """A SummaryWriter wrapper: disk errors are reported once, then swallowed.

    Logging is a side channel; a full disk must not stop a robot that is acting.
    `error` holds the first failure (for /diagnostics) and `errors` counts them.
    """

    def __init__(self, root: str | Path, node: str, run_name: str | None = None,
                 enabled: bool = True, resume_step: int | None = None,
                 flush_secs: float = 10.0,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.log_dir = Path(root) / (run_name or default_run_name()) / node
        self.enabled = enabled
        self.error: str | None = None
        self.errors = 0
        self._report = on_error or _log.error
        self._writer = None
        if enabled:
            self._guard(self._open, resume_step, flush_secs)

    def _open(self, resume_step: int | None, flush_secs: float) -> None:
        from torch.utils.tensorboard import SummaryWriter  # heavy import, only when enabled
        self._writer = SummaryWriter(str(self.log_dir), purge_step=resume_step,
                                     flush_secs=flush_secs)

    def _guard(self, action: Callable[..., object], *args: object, **kwargs: object) -> None:
        try:
            action(*args, **kwargs)
        except OSError as exc:
            self.errors += 1
            if self.error is None:
                self.error = f'training log {self.log_dir} failed: {exc}'
                self._report(f'{self.error}; training goes on without logging this '
                             '(further errors are not reported)')

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self._writer is not None:
            self._guard(self._writer.add_scalar, tag, float(value), int(step))

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        """Each entry as its own curve (not add_scalars, which makes one run per tag)."""
        for tag, value in values.items():
            self.scalar(tag, value, step)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """An HxWx3 uint8 RGB image, e.g. a prediction next to the frame it predicts."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f'image {tag!r} must be HxWx3 uint8, got {image.shape} '
                             f'{image.dtype}')
        if self._writer is not None:
            self._guard(self._writer.add_image, tag, image, int(step), dataformats='HWC')

    def flush(self) -> None:
        if self._writer is not None:
            self._guard(self._writer.flush)

    def close(self) -> None:
        if self._writer is not None:
            self._guard(self._writer.close)
            self._writer = None

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

"""OpenCV capture of a device index, a file or a stream URL, resized to the model's input."""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np


def parse_video_device(spec: str) -> int | str:
    """usb_cam style: '0' or '/dev/video0' is a device, anything else a file or URL."""
    text = spec.strip()
    if text.isdigit():
        return int(text)
    if text.startswith('/dev/video') and text[len('/dev/video'):].isdigit():
        return int(text[len('/dev/video'):])
    return text


def is_file(spec: int | str) -> bool:
    """A file plays at the configured frame rate; devices and streams pace themselves."""
    return isinstance(spec, str) and '://' not in spec and os.path.isfile(spec)


class SourceError(RuntimeError):
    """The source could not be opened or stopped delivering frames."""


class VideoSource:
    """One opened capture; `read()` returns RGB frames of the requested size."""

    def __init__(self, spec: str, width: int, height: int, open_timeout_s: float = 5.0) -> None:
        self.spec = spec
        self._target = parse_video_device(spec)
        self._size = (width, height)
        self.is_file = is_file(self._target)
        if isinstance(self._target, str) and '://' not in self._target and not self.is_file:
            raise SourceError(f"video_device '{spec}' is neither a device index, an existing "
                              f"file nor a URL: check the path")
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(open_timeout_s * 1000)]
        self._capture = cv2.VideoCapture(self._target, cv2.CAP_ANY, params)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f"could not open video_device '{spec}': check that the camera, "
                              f"file or stream exists and is not used by another program")

    def read(self) -> np.ndarray:
        """The next frame as HxWx3 uint8 RGB at the requested size."""
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            raise SourceError(f"video_device '{self.spec}' delivered no frame (ended or lost)")
        return to_model_input(bgr, *self._size)

    def close(self) -> None:
        self._capture.release()


def to_model_input(bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    """OpenCV's BGR frame as RGB at the model's size (area interpolation when shrinking)."""
    if bgr.shape[1] != width or bgr.shape[0] != height:
        shrinking = bgr.shape[1] > width
        bgr = cv2.resize(bgr, (width, height),
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class Backoff:
    """Exponential retry delay: doubles after each failure, resets after a success."""

    initial_s: float = 0.5
    max_s: float = 5.0
    _next: float = 0.0

    def failed(self) -> float:
        """Record a failure; return how long to wait before the next try."""
        self._next = self.initial_s if self._next == 0.0 else min(self._next * 2, self.max_s)
        return self._next

    def succeeded(self) -> None:
        self._next = 0.0

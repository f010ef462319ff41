"""camera_node: publishes image_raw (rgb8 at the model's size) and camera_info.

A capture thread reads the source as fast as it delivers and publishes at most `framerate`
frames per second, each stamped with the time it was read. A lost source is retried with
back-off and reported on /diagnostics, never a crash loop.
"""
from __future__ import annotations

import threading
import time

from rclpy._rclpy_pybind11 import RCLError
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from ami_nodes.camera.calibration import load_camera_info
from ami_nodes.camera.capture import Backoff, SourceError, VideoSource
from ami_nodes.monitoring.rates import RateMeter, RollingStats
from ami_nodes.ros import diagnostics, qos
from ami_nodes.ros.messages import rgb_to_image
from ami_nodes.ros.params import Param, declare
from ami_nodes.ros.spin import run_node

PARAMETERS = (
    Param('video_device', 'http://127.0.0.1:8090/stream.mjpg',
          'Camera index (0, /dev/video0), video file, or stream URL (MJPEG/RTSP)'),
    Param('image_width', 84, 'Width of published images (the model input)', 8, 4096),
    Param('image_height', 84, 'Height of published images (the model input)', 8, 4096),
    Param('framerate', 20.0, 'Most frames published per second', 0.1, 240.0),
    Param('frame_id', 'camera', 'frame_id of published images'),
    Param('camera_info_url', '', 'Calibration YAML (file:// or a path); empty = uncalibrated'),
    Param('reconnect_initial_delay', 0.5, 'First retry delay after losing the source (s)', 0.01, 60.0),
    Param('reconnect_max_delay', 5.0, 'Longest retry delay after losing the source (s)', 0.1, 600.0),
)


class CameraNode(Node):
    def __init__(self) -> None:
        super().__init__('camera_node')
        self.p = declare(self, PARAMETERS)
        self._image_pub = self.create_publisher(Image, 'image_raw', qos.STREAM)
        self._info_pub = self.create_publisher(CameraInfo, 'camera_info', qos.STREAM)
        self._info = load_camera_info(self.p.camera_info_url, self.p.image_width,
                                      self.p.image_height, self.p.frame_id)
        self._rate = RateMeter()
        self._read_ms = RollingStats()
        self._state = 'starting'
        self._last_error = ''
        self._reconnects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture_loop, name='capture', daemon=True)
        self._thread.start()
        diagnostics.DiagnosticsPublisher(self, self._report)

    def _capture_loop(self) -> None:
        backoff = Backoff(self.p.reconnect_initial_delay, self.p.reconnect_max_delay)
        period = 1.0 / self.p.framerate
        while not self._stop.is_set():
            try:
                source = VideoSource(self.p.video_device, self.p.image_width, self.p.image_height)
            except SourceError as error:
                self._lost(error, backoff)
                continue
            self.get_logger().info(f"opened video_device '{self.p.video_device}'")
            backoff.succeeded()
            try:
                self._stream(source, period)
            except SourceError as error:
                self._lost(error, backoff)
            finally:
                source.close()

    def _stream(self, source: VideoSource, period: float) -> None:
        next_due = time.monotonic()
        while not self._stop.is_set():
            if source.is_file:
                self._stop.wait(max(0.0, next_due - time.monotonic()))
            started = time.monotonic()
            rgb = source.read()
            self._state = 'streaming'
            now = time.monotonic()
            self._read_ms.add((now - started) * 1000)
            if now < next_due - 0.3 * period:
                continue  # a live source ran ahead of `framerate`: drop this frame
            next_due = max(next_due + period, now + 0.5 * period)
            self._publish(rgb)

    def _publish(self, rgb) -> None:
        if not self.context.ok():  # shutting down: the capture thread outlives the context
            self._stop.set()
            return
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.p.frame_id)
        self._info.header = header
        try:
            self._image_pub.publish(rgb_to_image(rgb, header))
            self._info_pub.publish(self._info)
        except RCLError:
            if self.context.ok():
                raise
            self._stop.set()  # the context closed between the check and the publish
        self._rate.tick()

    def _lost(self, error: SourceError, backoff: Backoff) -> None:
        delay = backoff.failed()
        self._state = 'reconnecting'
        self._reconnects += 1
        self._last_error = str(error)
        self.get_logger().error(f'{error}; retrying in {delay:.1f} s')
        self._stop.wait(delay)

    def _report(self) -> diagnostics.Report:
        rate = self._rate.rate()
        values = {'state': self._state, 'rate_hz': rate, 'frames': self._rate.count,
                  'read_ms_p50': self._read_ms.p50, 'reconnects': self._reconnects,
                  'video_device': self.p.video_device, 'last_error': self._last_error}
        if self._state != 'streaming':
            return diagnostics.ERROR, f'no frames: {self._last_error or self._state}', values
        if rate < 0.8 * self.p.framerate:
            return diagnostics.WARN, f'{rate:.1f} Hz, below framerate {self.p.framerate:g}', values
        return diagnostics.OK, f'streaming {rate:.1f} Hz', values

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def main(args: list[str] | None = None) -> None:
    run_node(CameraNode, args)


if __name__ == '__main__':
    main()

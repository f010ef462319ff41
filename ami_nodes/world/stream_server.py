"""Serves the world's view over HTTP the way an IP camera does, plus its ground truth as JSON.

`/stream.mjpg` is multipart/x-mixed-replace MJPEG that `cv2.VideoCapture(url)` reads like any
camera; `/frame.jpg` is the latest frame; `/state` is JSON. Each client is sent only the newest
frame when it is ready for one: nothing queues on the server, so a slow reader skips frames
instead of falling seconds behind.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import cv2
import numpy as np

log = logging.getLogger(__name__)

BOUNDARY = 'amiframe'
_INDEX_HTML = (b'<!doctype html><title>ami_world</title>'
               b'<img src="/stream.mjpg" style="width:640px;image-rendering:pixelated">'
               b'<p><a href="/state">/state</a> <a href="/frame.jpg">/frame.jpg</a></p>')


def encode_jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 RGB image."""
    ok, buffer = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError('OpenCV failed to encode a JPEG')
    return buffer.tobytes()


class FrameHub:
    """The latest JPEG and its index; stream handlers wait here for a newer one."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._jpeg: bytes | None = None
        self._index = -1
        self._closed = False

    def publish(self, jpeg: bytes, index: int) -> None:
        with self._changed:
            self._jpeg, self._index = jpeg, index
            self._changed.notify_all()

    def latest(self) -> tuple[bytes | None, int]:
        with self._changed:
            return self._jpeg, self._index

    def wait_newer(self, seen_index: int, timeout: float) -> tuple[bytes, int] | None:
        """The newest frame once its index passes `seen_index`; None on timeout or when closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self._index > seen_index, timeout)
            if self._closed or self._jpeg is None or self._index <= seen_index:
                return None
            return self._jpeg, self._index

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        with self._changed:
            return self._closed


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    stream: StreamServer


class _Handler(BaseHTTPRequestHandler):
    timeout = 10.0   # a client that stops reading for this long is dropped

    def do_GET(self) -> None:  # noqa: N802 (name fixed by http.server)
        stream = cast(_HttpServer, self.server).stream
        path = self.path.split('?', 1)[0]
        if path == '/stream.mjpg':
            stream.serve_mjpeg(self)
        elif path == '/frame.jpg':
            jpeg, _ = stream.hub.latest()
            if jpeg is None:
                self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, 'no frame yet')
            else:
                self._send(jpeg, 'image/jpeg')
                stream.count_frame()
        elif path == '/state':
            self._send(json.dumps(stream.state()).encode(), 'application/json')
        elif path == '/':
            self._send(_INDEX_HTML, 'text/html')
        else:
            self.send_error(HTTPStatus.NOT_FOUND, 'try /stream.mjpg, /frame.jpg or /state')

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Cache-Control', 'no-store')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (signature fixed by http.server)
        log.debug('%s ' + format, self.client_address[0], *args)


class StreamServer:
    """HTTP server thread: MJPEG stream, latest frame and `/state` JSON from `state_provider`."""

    def __init__(self, state_provider: Callable[[], dict[str, Any]],
                 host: str = '127.0.0.1', port: int = 8090) -> None:
        self.hub = FrameHub()
        self._state_provider = state_provider
        self._counter_lock = threading.Lock()
        self._frames_served = 0
        self._clients = 0
        self._server = _HttpServer((host, port), _Handler)   # binds now: OSError if taken
        self._server.stream = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={'poll_interval': 0.1}, name='mjpeg-http', daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def url(self, path: str = '/stream.mjpg') -> str:
        host, port = self.address
        return f'http://{host}:{port}{path}'

    @property
    def frames_served(self) -> int:
        """JPEGs sent to clients, stream parts and single frames together."""
        with self._counter_lock:
            return self._frames_served

    @property
    def stream_clients(self) -> int:
        with self._counter_lock:
            return self._clients

    def start(self) -> None:
        self._thread.start()

    def publish(self, jpeg: bytes, index: int) -> None:
        self.hub.publish(jpeg, index)

    def stop(self) -> None:
        """End every stream, stop accepting and release the port."""
        self.hub.close()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def state(self) -> dict[str, Any]:
        state = dict(self._state_provider())
        state.update(frames_served=self.frames_served, stream_clients=self.stream_clients)
        return state

    def count_frame(self) -> None:
        with self._counter_lock:
            self._frames_served += 1

    def serve_mjpeg(self, handler: BaseHTTPRequestHandler) -> None:
        """Send each newer frame as one multipart part until the client leaves or the server stops."""
        handler.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        handler.send_response(HTTPStatus.OK)
        handler.send_header('Content-Type', f'multipart/x-mixed-replace; boundary={BOUNDARY}')
        handler.send_header('Cache-Control', 'no-store')
        handler.send_header('Connection', 'close')
        handler.end_headers()
        with self._counter_lock:
            self._clients += 1
        seen = -1
        try:
            while not self.hub.closed:
                newer = self.hub.wait_newer(seen, timeout=0.5)
                if newer is None:
                    continue
                jpeg, seen = newer
                handler.wfile.write(b''.join((
                    f'--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n'.encode(),
                    jpeg, b'\r\n')))
                self.count_frame()
        except OSError:   # client went away (broken pipe, reset, or stopped reading)
            pass
        finally:
            with self._counter_lock:
                self._clients -= 1

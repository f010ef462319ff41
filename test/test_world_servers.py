"""The world's servers over real sockets: OSC in on UDP, MJPEG/JPEG/JSON out on HTTP, and the process."""
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from ami_nodes.actuation import vrchat_osc as osc
from ami_nodes.world.main import EXIT_BIND_ERROR, SUMMARY_PREFIX
from ami_nodes.world.osc_server import OscInputServer
from ami_nodes.world.sim import World, WorldConfig
from ami_nodes.world.stream_server import StreamServer, encode_jpeg

REPO = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, BITS = 160, 120, 16


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# ---- OSC in -------------------------------------------------------------------------------
@pytest.fixture
def osc_world():
    world, lock = World(WorldConfig(seed=1)), threading.Lock()
    server = OscInputServer(world, lock, port=0)
    server.start()
    yield world, lock, server, SimpleUDPClient(*server.address)
    server.stop()


def test_udp_osc_moves_the_agent(osc_world):
    world, lock, server, client = osc_world
    x0, y0 = world.pose.x, world.pose.y
    client.send_message(osc.VERTICAL, 1.0)
    client.send_message(osc.LOOK_HORIZONTAL, -0.5)
    assert wait_for(lambda: world.held_inputs() == {osc.VERTICAL: 1.0, osc.LOOK_HORIZONTAL: -0.5})
    with lock:
        world.step(1.0)
    assert np.hypot(world.pose.x - x0, world.pose.y - y0) > 0.1
    assert server.counts() == {osc.VERTICAL: 1, osc.LOOK_HORIZONTAL: 1}


def test_udp_jump_keeps_order_and_edges(osc_world):
    world, lock, server, client = osc_world
    for value in (1, 1, 0, 1):     # one edge, a repeat that must do nothing, then a second edge
        client.send_message(osc.JUMP, value)
    assert wait_for(lambda: server.counts().get(osc.JUMP) == 4)
    with lock:
        world.step(0.05)
    assert world.jumps == 1 and world.pose.z > 0.0, 'both edges landed before one step: one hop'
    with lock:
        world.step(1.0)                           # land
    client.send_message(osc.JUMP, 0)
    client.send_message(osc.JUMP, 1)
    assert wait_for(lambda: server.counts().get(osc.JUMP) == 6)
    with lock:
        world.step(0.05)
    assert world.jumps == 2


def test_bad_osc_is_counted_and_never_crashes(osc_world, caplog):
    world, lock, server, client = osc_world
    client.send_message('/input/Fly', 1)
    client.send_message('/input/Fly', 1)
    client.send_message(osc.VERTICAL, 3.0)
    client.send_message(osc.JUMP, [1, 1])
    client._sock.sendto(b'not osc at all', server.address)
    client.send_message(osc.MOVE_LEFT, 1)   # still served after all that
    assert wait_for(lambda: world.held_inputs() == {osc.MOVE_LEFT: 1})
    assert server.rejected() == {'/input/Fly': 2, osc.VERTICAL: 1, osc.JUMP: 1}
    assert server.counts()['/input/Fly'] == 2
    assert sum('/input/Fly' in record.getMessage() for record in caplog.records) == 1, 'logged once per address'


# ---- HTTP out -----------------------------------------------------------------------------
def indexed_frame(index: int) -> np.ndarray:
    """A frame whose 16 vertical bands spell `index` in binary, so a reader knows which it got."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    band = WIDTH // BITS
    for bit in range(BITS):
        if index >> bit & 1:
            image[:, bit * band:(bit + 1) * band] = 255
    return image


def frame_index(image: np.ndarray) -> int:
    band = WIDTH // BITS
    return sum(1 << bit for bit in range(BITS) if image[:, bit * band + 2:(bit + 1) * band - 2].mean() > 127)


@pytest.fixture
def stream():
    server = StreamServer(lambda: {'frame': 7}, port=0)
    server.start()
    yield server
    server.stop()


class Publisher:
    """Publishes indexed frames at `fps` from a thread, as the world loop does."""

    def __init__(self, server: StreamServer, fps: float) -> None:
        self.latest = -1
        self._jpegs = [encode_jpeg(indexed_frame(i)) for i in range(256)]
        self._server, self._period, self._stop = server, 1.0 / fps, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            self.latest += 1
            self._server.publish(self._jpegs[self.latest % 256], self.latest)
            due += self._period
            self._stop.wait(max(0.0, due - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_opencv_reads_the_mjpeg_stream_with_the_newest_frame(stream):
    publisher = Publisher(stream, fps=20.0)
    try:
        capture = cv2.VideoCapture(stream.url(), cv2.CAP_FFMPEG)
        assert capture.isOpened()
        other = cv2.VideoCapture(stream.url(), cv2.CAP_FFMPEG)   # several clients at once
        lags = []
        for _ in range(20):                     # a camera reading as the camera node does
            ok, bgr = capture.read()
            assert ok and bgr.shape == (HEIGHT, WIDTH, 3)
            lags.append(publisher.latest - frame_index(bgr) % 256)
            assert other.read()[0]
        # the median: one stall of this reader leaves a few frames in the TCP buffer
        assert sorted(lags)[len(lags) // 2] <= 1, f'reader fell behind: {lags}'
        assert stream.stream_clients == 2
        capture.release()
        other.release()
        assert wait_for(lambda: stream.stream_clients == 0)
    finally:
        publisher.stop()


def test_opencv_keeps_up_with_a_fast_stream(stream):
    """At 1000 frames/s every read succeeds and brings a new frame, never a repeat (how fast
    it reads is the benchmark's business, not a test's)."""
    publisher = Publisher(stream, fps=1000.0)
    try:
        capture = cv2.VideoCapture(stream.url(), cv2.CAP_FFMPEG)
        assert capture.read()[0]
        indices = []
        for _ in range(100):
            ok, bgr = capture.read()
            assert ok
            indices.append(frame_index(bgr) % 256)
        capture.release()
    finally:
        publisher.stop()
    repeats = sum(a == b for a, b in zip(indices, indices[1:]))
    assert repeats == 0, indices


def test_frame_jpg_state_and_unknown_paths(stream):
    with pytest.raises(urllib.error.HTTPError) as no_frame:
        urllib.request.urlopen(stream.url('/frame.jpg'), timeout=2)
    assert no_frame.value.code == 503
    stream.publish(encode_jpeg(indexed_frame(1234)), 1234)
    with urllib.request.urlopen(stream.url('/frame.jpg'), timeout=2) as response:
        assert response.headers['Content-Type'] == 'image/jpeg'
        image = cv2.imdecode(np.frombuffer(response.read(), np.uint8), cv2.IMREAD_COLOR)
    assert frame_index(image) == 1234
    with urllib.request.urlopen(stream.url('/state'), timeout=2) as response:
        state = json.load(response)
    assert state == {'frame': 7, 'frames_served': 1, 'stream_clients': 0}
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(stream.url('/nothing'), timeout=2)
    assert missing.value.code == 404


# ---- the process --------------------------------------------------------------------------
def start_world(*args: str) -> tuple[subprocess.Popen, str, tuple[str, int]]:
    """Start `ami_world` on free ports; return it, its state URL and its OSC address."""
    process = subprocess.Popen(
        [sys.executable, '-m', 'ami_nodes.world.main', '--http-port', '0', '--osc-port', '0', *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line.startswith('ami_world: streaming http://'), line + process.stderr.read()
    stream_url = line.split()[2]
    osc_host, osc_port = line.split('udp://')[1].split(',')[0].rsplit(':', 1)
    return process, stream_url, (osc_host, int(osc_port))


def stop_world(process: subprocess.Popen, signum: int) -> dict:
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    lines = [line for line in out.splitlines() if line.startswith(SUMMARY_PREFIX)]
    assert len(lines) == 1, out
    return json.loads(lines[0][len(SUMMARY_PREFIX):])


def read_state(stream_url: str) -> dict:
    with urllib.request.urlopen(stream_url.replace('/stream.mjpg', '/state'), timeout=10) as response:
        return json.load(response)


def test_world_process_takes_osc_streams_and_summarises(tmp_path):
    log_path = tmp_path / 'trajectory.jsonl'
    process, stream_url, osc_address = start_world('--seed', '3', '--trajectory-log', str(log_path))
    try:
        capture = cv2.VideoCapture(stream_url, cv2.CAP_FFMPEG)
        ok, bgr = capture.read()
        capture.release()
        assert ok and bgr.shape == (120, 160, 3)
        client = SimpleUDPClient(*osc_address)
        start = read_state(stream_url)
        client.send_message(osc.LOOK_HORIZONTAL, 1.0)
        client.send_message(osc.RUN, 1)
        assert wait_for(lambda: read_state(stream_url)['held_inputs'] == {osc.LOOK_HORIZONTAL: 1.0, osc.RUN: 1})
        assert wait_for(lambda: abs(read_state(stream_url)['pose']['yaw'] - start['pose']['yaw']) > 0.2)
        for address, value in osc.InputState().release_all():
            client.send_message(address, value)
        assert wait_for(lambda: read_state(stream_url)['held_inputs'] == {})
        state = read_state(stream_url)
        assert state['frame'] > start['frame'] and 0.0 < state['coverage'] <= 1.0
        assert {'time', 'pose', 'cells_visited', 'in_view', 'frames_served'} <= state.keys()
    finally:
        summary = stop_world(process, signal.SIGINT)
    assert summary['held_inputs'] == {}
    assert summary['datagrams'][osc.LOOK_HORIZONTAL] == 2 and summary['datagrams'][osc.JUMP] == 1
    assert summary['frames_served'] >= 1 and summary['coverage'] > 0.0
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert len(records) == summary['frames'] and records[-1]['frame'] == summary['frames'] - 1
    assert {'t', 'frame', 'x', 'y', 'yaw', 'z', 'in_view', 'coverage'} == records[0].keys()


def test_world_process_stops_on_sigterm_and_reports_a_taken_port():
    process, stream_url, osc_address = start_world()
    http_port = int(stream_url.rsplit(':', 1)[1].split('/')[0])
    clash = subprocess.run(
        [sys.executable, '-m', 'ami_nodes.world.main', '--http-port', str(http_port), '--osc-port', '0'],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert clash.returncode == EXIT_BIND_ERROR
    assert 'Address already in use' in clash.stderr and '--http-port' in clash.stderr
    summary = stop_world(process, signal.SIGTERM)
    assert summary['datagrams'] == {} and summary['frames'] >= 1

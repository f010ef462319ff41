"""camera_node over real rclpy: frames flow at the configured rate; a bad source is survived."""
import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import start_node, stop
from sensor_msgs.msg import CameraInfo, Image

from ami_nodes.ros import qos
from ami_nodes.ros.messages import image_to_rgb, stamp_to_ns
from ami_nodes.tools.launch_config import free_port

pytestmark = pytest.mark.ros


@pytest.fixture
def video_file(tmp_path):
    path = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 30, (160, 120))
    for i in range(90):
        frame = np.zeros((120, 160, 3), np.uint8)
        frame[:, :] = (20, i * 2, 220)  # BGR: red, must arrive as red in rgb8
        writer.write(frame)
    writer.release()
    return path


def test_publishes_rgb8_frames_at_framerate(watcher, video_file, tmp_path):
    images = watcher.subscribe(Image, 'image_raw', qos.SENSOR)
    infos = watcher.subscribe(CameraInfo, 'camera_info', qos.SENSOR)
    node = start_node('ami_nodes.nodes.camera_node', 'camera_node', {
        'video_device': str(video_file), 'framerate': 20.0, 'image_width': 84,
        'image_height': 84}, log=tmp_path / 'camera.log')
    try:
        assert watcher.spin_until(lambda: len(images) >= 41, 60.0), (tmp_path / 'camera.log').read_text()
        # The pace from the frames' own stamps: the median gap is the timer's period, however
        # slowly this test's process was scheduled (a stall delays one frame, not the median).
        gaps_ms = np.diff([stamp_to_ns(m.header.stamp) for m in images[:41]]) / 1e6
        assert 45.0 <= float(np.median(gaps_ms)) <= 55.0, gaps_ms
        msg = images[-1]
        rgb = image_to_rgb(msg, 84, 84)
        assert msg.encoding == 'rgb8' and msg.header.frame_id == 'camera'
        assert rgb[..., 0].mean() > 180 and rgb[..., 2].mean() < 60  # BGR -> RGB
        stamps = [stamp_to_ns(m.header.stamp) for m in images]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        assert infos and infos[-1].width == 84
    finally:
        assert stop(node) == 0


def test_unopenable_url_is_reported_and_survived(watcher, tmp_path):
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    url = f'http://127.0.0.1:{free_port()}/stream.mjpg'
    log = tmp_path / 'camera.log'
    node = start_node('ami_nodes.nodes.camera_node', 'camera_node', {
        'video_device': url, 'reconnect_initial_delay': 0.1, 'reconnect_max_delay': 0.5}, log=log)
    try:
        def reported():
            return any(s.name == 'camera_node' and s.level == b'\x02' and 'could not open' in s.message
                       for d in diagnostics for s in d.status)
        assert watcher.spin_until(reported, 60.0), log.read_text()
        watcher.spin_for(1.0)
        assert node.poll() is None, 'camera_node must keep running while the source is down'
    finally:
        assert stop(node) == 0
    text = log.read_text()
    assert 'could not open video_device' in text and 'retrying in' in text

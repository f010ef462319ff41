"""Recordings: rosbag2's MCAP layout written without rosbag2, read back with the mcap readers."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rclpy.serialization import deserialize_message, serialize_message
from ros_harness import REPO, start_node, stop
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ami_nodes.perception.online import OnlinePerceptionConfig
from ami_nodes.recording.bag import DELIMITER, BagWriter, QosOffer, bag_file, message_definition
from ami_nodes.ros.messages import action_to_msg, ns_to_stamp, rgb_to_image, stamp_to_ns
from ami_nodes.tools.replay import pretrain, recorded_frames

SHARE = Path(sys.prefix) / 'share'


def test_definitions_are_concatenated_as_rosbag2_does():
    text = message_definition('geometry_msgs/msg/TwistStamped')
    parts = text.split(f'\n{DELIMITER}\n')
    assert parts[0] == (SHARE / 'geometry_msgs/msg/TwistStamped.msg').read_text()
    # dependencies in sorted order, depth first, each once
    assert [p.splitlines()[0] for p in parts[1:]] == [
        'MSG: geometry_msgs/Twist', 'MSG: geometry_msgs/Vector3', 'MSG: std_msgs/Header',
        'MSG: builtin_interfaces/Time']
    assert parts[2].split('\n', 1)[1] == (SHARE / 'geometry_msgs/msg/Vector3.msg').read_text()
    image = message_definition('sensor_msgs/msg/Image')
    assert image.count('MSG: ') == 2 and image.count('MSG: std_msgs/Header\n') == 1


def test_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / 'old').mkdir()
    (tmp_path / 'old' / 'x').write_text('keep')
    with pytest.raises(FileExistsError, match='not empty'):
        BagWriter(tmp_path / 'old')


def write_synthetic(directory: Path, frames: int) -> list[int]:
    """A recording of `frames` 36x36 images and the action taken on each, like the system."""
    bag = BagWriter(directory)
    bag.add_topic('/image_raw', 'sensor_msgs/msg/Image', [QosOffer(reliability=2)])
    bag.add_topic('/action', 'sensor_msgs/msg/JointState', [QosOffer()])
    rng = np.random.default_rng(0)
    stamps = []
    for i in range(frames):
        stamp = 1_700_000_000_000_000_000 + i * 50_000_000
        header = Header(frame_id='camera', stamp=ns_to_stamp(stamp))
        rgb = rng.integers(0, 255, (36, 36, 3), dtype=np.uint8)
        bag.write('/image_raw', serialize_message(rgb_to_image(rgb, header)), stamp + 1_000_000)
        bag.write('/action', serialize_message(action_to_msg((i % 3, 0, 1, 0, 0), header)),
                  stamp + 2_000_000)
        stamps.append(stamp)
    bag.close()
    return stamps


def test_written_recording_reads_back_exactly_and_trains_the_encoder(tmp_path):
    stamps = write_synthetic(tmp_path / 'rec', 24)
    info = yaml.safe_load((tmp_path / 'rec' / 'metadata.yaml').read_text())
    info = info['rosbag2_bagfile_information']
    assert info['version'] == 8 and info['storage_identifier'] == 'mcap'
    assert info['message_count'] == 48 and info['relative_file_paths'] == ['rec_0.mcap']
    assert info['starting_time']['nanoseconds_since_epoch'] == stamps[0] + 1_000_000
    counts = {t['topic_metadata']['name']: t['message_count']
              for t in info['topics_with_message_count']}
    assert counts == {'/image_raw': 24, '/action': 24}
    qos = yaml.safe_load(info['topics_with_message_count'][0]['topic_metadata']
                         ['offered_qos_profiles'])
    assert qos[0]['reliability'] == 2 and qos[0]['deadline'] == {'sec': 0, 'nsec': 0}

    with open(bag_file(tmp_path / 'rec'), 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == 'ros2'
        record = next(reader.iter_metadata())
        assert record.name == 'rosbag2'
        assert yaml.safe_load(record.metadata['serialized_metadata']) == info
        images = [(m, d) for _, c, m, d in reader.iter_decoded_messages(['/image_raw'])]
    assert [stamp_to_ns(d.header.stamp) for _, d in images] == stamps
    first = deserialize_message(images[0][0].data, Image)
    assert bytes(first.data) == images[0][1].data and first.header.frame_id == 'camera'

    frames = list(recorded_frames(tmp_path / 'rec'))
    assert [f[0] for f in frames] == stamps
    assert frames[0][2] is None and frames[5][2] == (4 % 3, 0, 1, 0, 0)  # action of frame 4
    summary = pretrain(tmp_path / 'rec', tmp_path / 'out', epochs=2,
                       config=OnlinePerceptionConfig(image_size=36, replay_batch=0))
    assert summary['frames'] == 48 and summary['frames_with_action'] == 46
    assert summary['train_steps'] > 0 and (tmp_path / 'out' / 'encoder.safetensors').stat().st_size
    cli = subprocess.run([sys.executable, '-m', 'ami_nodes.tools.cli', 'replay',
                          str(tmp_path / 'rec' / 'rec_0.mcap'), '-o', str(tmp_path / 'cli')],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)['frames'] == 24
    assert (tmp_path / 'cli' / 'encoder.safetensors').is_file()


@pytest.fixture
def video_file(tmp_path):
    path = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 30, (84, 84))
    for i in range(400):
        writer.write(np.full((84, 84, 3), (i % 250, 80, 160), np.uint8))
    writer.release()
    return path


def camera_frames(diagnostics) -> int | None:
    for status in diagnostics.status:
        if status.name == 'camera_node':
            return int(next(kv.value for kv in status.values if kv.key == 'frames'))
    return None


@pytest.mark.ros
def test_record_a_running_camera(tmp_path, video_file):
    camera = start_node('ami_nodes.nodes.camera_node', 'camera_node', {
        'video_device': str(video_file), 'framerate': 30.0, 'image_width': 84,
        'image_height': 84}, log=tmp_path / 'camera.log')
    try:
        result = subprocess.run(
            [sys.executable, '-m', 'ami_nodes.tools.cli', 'record', 'image_raw', '/diagnostics',
             '-o', str(tmp_path / 'bag'), '--duration', '10'],
            cwd=REPO, capture_output=True, text=True, timeout=90)
    finally:
        assert stop(camera) == 0
    assert result.returncode == 0, result.stdout + result.stderr

    with open(bag_file(tmp_path / 'bag'), 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert {c.topic for c in summary.channels.values()} == {'/image_raw', '/diagnostics'}
        images, reports = [], []
        for _, channel, message, decoded in reader.iter_decoded_messages():
            assert message.publish_time == message.log_time
            (images if channel.topic == '/image_raw' else reports).append((message, decoded))
    assert summary.schemas[1].encoding == 'ros2msg'

    header_stamps = [stamp_to_ns(d.header.stamp) for _, d in images]
    log_times = [m.log_time for m, _ in images]
    assert header_stamps == sorted(header_stamps) and len(set(header_stamps)) == len(images)
    assert log_times == sorted(log_times)
    # received after capture, on the same clock (the bound only catches a unit mix-up)
    assert all(0 < log - stamp < 5_000_000_000 for log, stamp in zip(log_times, header_stamps))
    assert [stamp_to_ns(deserialize_message(m.data, Image).header.stamp)
            for m, _ in images[:5]] == header_stamps[:5]

    # frames the camera says it published between two of its reports, against frames recorded
    # with capture stamps between those reports' stamps: none lost. The first and last
    # reports are left out: the two subscriptions match and stop independently.
    counted = [(stamp_to_ns(d.header.stamp), camera_frames(d)) for _, d in reports]
    counted = [(stamp, frames) for stamp, frames in counted if frames is not None]
    assert len(counted) >= 5, counted
    (first_stamp, first_frames), (last_stamp, last_frames) = counted[1], counted[-2]
    published = last_frames - first_frames
    recorded = sum(first_stamp < s <= last_stamp for s in header_stamps)
    assert published > 30 and abs(recorded - published) <= 2, (recorded, published)
    info = yaml.safe_load((tmp_path / 'bag' / 'metadata.yaml').read_text())
    counts = {t['topic_metadata']['name']: t['message_count']
              for t in info['rosbag2_bagfile_information']['topics_with_message_count']}
    assert counts['/image_raw'] == len(images)

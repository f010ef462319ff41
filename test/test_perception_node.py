"""perception_node over real rclpy: features carry the frame's stamp; bad images are refused;
measured velocities feed the odometry term."""
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from ros_harness import diagnostic_values, rejected, start_node, stop
from sensor_msgs.msg import Image
from std_msgs.msg import Float32, Header

from ami_nodes.ros import qos
from ami_nodes.ros.messages import msg_to_features, ns_to_stamp, rgb_to_image, stamp_to_ns

pytestmark = pytest.mark.ros


def test_features_keep_the_stamp_and_bad_images_are_refused(watcher, tmp_path):
    features = watcher.subscribe(Image, 'features')
    losses = watcher.subscribe(Float32, '/perception_node/aux_loss', qos.MONITOR)
    previews = watcher.subscribe(Image, '/perception_node/preview', qos.MONITOR)
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    pub = watcher.node.create_publisher(Image, 'image_raw', qos.STREAM)
    log = tmp_path / 'perception.log'
    node = start_node('ami_nodes.nodes.perception_node', 'perception_node',
                      {'preview_every': 2}, log=log)
    rng = np.random.default_rng(0)
    try:
        assert watcher.spin_until(lambda: pub.get_subscription_count() > 0, 60.0)
        sent = []  # best-effort frames sent before both sides have matched are lost: send on
        while len(features) < 10:
            header = Header(frame_id='camera', stamp=ns_to_stamp(2_000_000_000 + len(sent) * 50_000_000))
            sent.append(stamp_to_ns(header.stamp))
            pub.publish(rgb_to_image(rng.integers(0, 255, (84, 84, 3), dtype=np.uint8), header))
            watcher.spin_for(0.1)
            assert len(sent) < 500, log.read_text()
        assert {stamp_to_ns(m.header.stamp) for m in features} <= set(sent)
        assert msg_to_features(features[-1], 64).shape == (64,)
        assert losses and np.isfinite(losses[-1].data)
        assert previews and previews[-1].encoding == 'rgb8'

        count = -1
        for _ in range(10):  # let frames still in the node's queue come out (bounded)
            if count == len(features):
                break
            count = len(features)
            watcher.spin_for(1.0)
        wrong = rgb_to_image(np.zeros((84, 84, 3), np.uint8), Header())
        wrong.encoding = 'yuv422'
        # image_raw keeps only the newest frame (best effort): one bad image at a time, sent
        # until counted.
        assert watcher.publish_until(pub, wrong, lambda: rejected(
            diagnostics, 'perception_node', 1, "encoding 'yuv422', expected one of"), 60.0)
        assert watcher.publish_until(pub, rgb_to_image(np.zeros((64, 48, 3), np.uint8), Header()),
                                     lambda: rejected(diagnostics, 'perception_node', 2,
                                                      'is 48x64, expected 84x84'), 60.0)
        assert len(features) == count, 'a refused image must not produce features'
        good = rgb_to_image(np.zeros((84, 84, 3), np.uint8), Header(stamp=ns_to_stamp(9_000_000_000)))
        assert watcher.publish_until(pub, good, lambda: len(features) > count, 60.0), \
            'the node must keep working'
    finally:
        assert stop(node) == 0
    text = log.read_text()
    assert "refused image_raw: image has encoding 'yuv422', expected one of" in text


def test_a_frozen_encoder_never_trains_and_says_k_is_off(watcher, tmp_path):
    features = watcher.subscribe(Image, 'features')
    every = watcher.subscribe(Float32, '/perception_node/train_every', qos.MONITOR)
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    pub = watcher.node.create_publisher(Image, 'image_raw', qos.STREAM)
    log = tmp_path / 'perception.log'
    node = start_node('ami_nodes.nodes.perception_node', 'perception_node', {'train_online': False}, log=log)
    rng = np.random.default_rng(1)
    try:
        assert watcher.spin_until(lambda: pub.get_subscription_count() > 0, 60.0)
        frames = 0
        while len(features) < 10 or not diagnostic_values(diagnostics, 'perception_node'):
            header = Header(frame_id='camera', stamp=ns_to_stamp(2_000_000_000 + frames * 50_000_000))
            pub.publish(rgb_to_image(rng.integers(0, 255, (84, 84, 3), dtype=np.uint8), header))
            frames += 1
            watcher.spin_for(0.1)
            assert frames < 1000, log.read_text()
        report = diagnostic_values(diagnostics, 'perception_node')[-1]
        assert report['train_every'] == 'off' and report['train_steps'] == '0'
        assert not every, 'the never-train sentinel is not a value to plot'
    finally:
        assert stop(node) == 0


def test_odometry_term_trains_from_measured_velocity_and_refuses_an_absurd_one(watcher, tmp_path):
    """With loss_odometry on, frames that come with measured velocities train the odometry term
    (its loss reaches ~/loss/odometry); frames without one are counted; 1e300 m/s is refused."""
    odometry_losses = watcher.subscribe(Float32, '/perception_node/loss/odometry', qos.MONITOR)
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    image_pub = watcher.node.create_publisher(Image, 'image_raw', qos.STREAM)
    velocity_pub = watcher.node.create_publisher(TwistStamped, 'measured_velocity', qos.STREAM)
    log = tmp_path / 'perception.log'
    node = start_node('ami_nodes.nodes.perception_node', 'perception_node',
                      {'loss_odometry': 1.0, 'replay_batch': 2, 'frame_set_size': 8}, log=log)
    rng = np.random.default_rng(2)

    def send(frame: int, speed: float | None) -> None:
        header = Header(frame_id='camera', stamp=ns_to_stamp(2_000_000_000 + frame * 50_000_000))
        if speed is not None:
            velocity = TwistStamped(header=Header(frame_id='base_link', stamp=header.stamp))
            velocity.twist.linear.x = speed
            velocity_pub.publish(velocity)
        image_pub.publish(rgb_to_image(rng.integers(0, 255, (84, 84, 3), dtype=np.uint8), header))
        watcher.spin_for(0.1)

    try:
        assert watcher.spin_until(lambda: image_pub.get_subscription_count() > 0
                                  and velocity_pub.get_subscription_count() > 0, 60.0)
        frame = 0

        def without_pose() -> int:
            reports = diagnostic_values(diagnostics, 'perception_node')
            return max((int(v.get('frames_without_pose', 0)) for v in reports), default=0)
        while without_pose() == 0:
            send(frame, None)
            frame += 1
            assert frame < 500, log.read_text()
        assert not odometry_losses, 'no pose was known: the term cannot have run'
        while not odometry_losses:
            send(frame, 1.0)
            frame += 1
            assert frame < 1000, log.read_text()
        assert np.isfinite(odometry_losses[-1].data)
        bad = TwistStamped()
        bad.twist.linear.x = 1e300
        assert watcher.publish_until(velocity_pub, bad, lambda: rejected(
            diagnostics, 'perception_node', 1, 'not finite or above'), 60.0), log.read_text()
        assert node.poll() is None
    finally:
        assert stop(node) == 0

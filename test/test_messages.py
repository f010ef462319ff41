"""How data rides on standard messages: exact round trips and clear refusals."""
import numpy as np
import pytest
from sensor_msgs.msg import JointState
from std_msgs.msg import Header

from ami_nodes.ros.messages import (Experience, MessageError, action_to_msg, blob_to_msg,
                                    experience_names, experience_to_msg, features_to_msg,
                                    image_to_rgb, msg_to_action, msg_to_blob,
                                    msg_to_experience, msg_to_features, ns_to_stamp,
                                    rgb_to_image, stamp_to_ns)


def header(ns: int = 1_234_567_890_123) -> Header:
    return Header(frame_id='camera', stamp=ns_to_stamp(ns))


def test_stamp_round_trip():
    assert stamp_to_ns(ns_to_stamp(1_795_420_000_123_456_789)) == 1_795_420_000_123_456_789


def test_image_round_trip_and_refusals():
    rgb = np.random.default_rng(0).integers(0, 255, (84, 84, 3), dtype=np.uint8)
    msg = rgb_to_image(rgb, header())
    assert np.array_equal(image_to_rgb(msg, 84, 84), rgb)
    msg.encoding = 'bgr8'
    with pytest.raises(MessageError, match="expected 'rgb8'"):
        image_to_rgb(msg)
    with pytest.raises(MessageError, match='expected 96x96'):
        image_to_rgb(rgb_to_image(rgb, header()), 96, 96)


def test_features_round_trip_and_size_check():
    features = np.linspace(-1, 1, 64, dtype=np.float32)
    msg = features_to_msg(features, header())
    assert msg.encoding == '32FC1' and (msg.height, msg.width) == (1, 64)
    assert np.array_equal(msg_to_features(msg, 64), features)
    with pytest.raises(MessageError, match='expected 32'):
        msg_to_features(msg, 32)


def test_action_names_each_head():
    msg = action_to_msg((1, 2, 0, 1, 0), header())
    assert list(msg.name) == ['move', 'strafe', 'turn', 'jump', 'run']
    assert msg_to_action(msg) == (1, 2, 0, 1, 0)
    with pytest.raises(MessageError):
        msg_to_action(JointState(name=['a'], position=[0.0]))


def test_experience_round_trip_is_self_describing():
    exp = Experience(stamp_ns=5, seq=42, policy_version=7, log_prob=-3.5, value=0.25,
                     action=(2, 0, 1, 0, 1), features=np.arange(16, dtype=np.float32))
    msg = experience_to_msg(exp, header(5), experience_names(16))
    assert msg.name[:4] == ['seq', 'policy_version', 'log_prob', 'value']
    back = msg_to_experience(msg)
    assert (back.seq, back.policy_version, back.action) == (42, 7, (2, 0, 1, 0, 1))
    assert back.log_prob == -3.5 and np.array_equal(back.features, exp.features)
    msg.position = msg.position[:-1]
    with pytest.raises(MessageError, match='values for'):
        msg_to_experience(msg)


def test_blob_round_trip():
    blob = bytes(range(256)) * 10
    msg = blob_to_msg(blob, 'weights v1')
    assert msg_to_blob(msg) == blob and msg.layout.dim[0].label == 'weights v1'

"""How data rides on standard messages: exact round trips and clear refusals of bad input."""
import numpy as np
import pytest
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32, Header

from ami_nodes.ros.messages import (Experience, MessageError, action_to_msg, blob_to_msg,
                                    experience_names, experience_to_msg, features_to_msg,
                                    image_to_rgb, msg_to_action, msg_to_blob,
                                    msg_to_experience, msg_to_features, msg_to_reward,
                                    ns_to_stamp, rgb_to_image, stamp_to_ns)


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


HOSTILE_FLOATS = [float('nan'), float('inf'), -float('inf'), 1e30]


@pytest.mark.parametrize('bad', HOSTILE_FLOATS)
def test_features_refuse_nan_inf_and_huge_values(bad):
    features = np.zeros(64, dtype=np.float32)
    features[7] = bad
    with pytest.raises(MessageError, match=r'NaN, infinite or beyond.*\[7\]'):
        msg_to_features(features_to_msg(features, header()), 64)


def test_features_refuse_empty_big_endian_and_short_data():
    empty = features_to_msg(np.zeros(0, dtype=np.float32), header())
    with pytest.raises(MessageError, match='expected 64'):
        msg_to_features(empty, 64)
    big_endian = features_to_msg(np.zeros(64, dtype=np.float32), header())
    big_endian.is_bigendian = 1
    with pytest.raises(MessageError, match='big-endian'):
        msg_to_features(big_endian, 64)
    short = features_to_msg(np.zeros(64, dtype=np.float32), header())
    short.data = bytes(255)
    with pytest.raises(MessageError, match='255 bytes'):
        msg_to_features(short, 64)


def test_images_refuse_empty_huge_and_mismatched_data():
    huge = rgb_to_image(np.zeros((1024, 1024, 3), np.uint8), header())  # 3 MB
    with pytest.raises(MessageError, match='is 1024x1024, expected 84x84'):
        image_to_rgb(huge, 84, 84)
    empty = rgb_to_image(np.zeros((84, 84, 3), np.uint8), header())
    empty.data = b''
    with pytest.raises(MessageError, match='0 bytes'):
        image_to_rgb(empty, 84, 84)
    narrow_step = rgb_to_image(np.zeros((84, 84, 3), np.uint8), header())
    narrow_step.step = 10
    narrow_step.data = bytes(84 * 10)
    with pytest.raises(MessageError):
        image_to_rgb(narrow_step, 84, 84)


@pytest.mark.parametrize('names, position', [
    (['move', 'strafe', 'turn', 'jump', 'run'], [float('nan'), 0, 0, 0, 0]),
    (['move', 'strafe', 'turn', 'jump', 'run'], [float('inf'), 0, 0, 0, 0]),
    (['move', 'strafe', 'turn', 'jump', 'run'], [3.0, 0, 0, 0, 0]),
    (['move', 'strafe', 'turn', 'jump', 'run'], [0.5, 0, 0, 0, 0]),
    (['move', 'strafe', 'turn', 'jump', 'run'], [0.0, 0, 0, 0]),
    (['move', 'strafe', 'turn', 'jump', 'run'], []),
    (['move', 'strafe', 'turn', 'run', 'jump'], [0.0] * 5),
    ([], []),
])
def test_action_refusals_are_message_errors(names, position):
    with pytest.raises(MessageError):
        msg_to_action(JointState(name=names, position=position))


def valid_experience(feature_dim: int = 16) -> JointState:
    exp = Experience(stamp_ns=5, seq=42, policy_version=7, log_prob=-3.5, value=0.25,
                     action=(2, 0, 1, 0, 1), features=np.ones(feature_dim, dtype=np.float32))
    return experience_to_msg(exp, header(5), experience_names(feature_dim))


@pytest.mark.parametrize('index, bad', [
    (0, float('nan')), (0, -1.0), (0, 2.5), (1, float('inf')), (1, -2.0), (2, float('nan')),
    (3, -float('inf')), (4, float('nan')), (4, 7.0), (9, float('nan')), (20, 1e30)])
def test_experience_refuses_each_bad_value(index, bad):
    msg = valid_experience()
    msg.position[index] = bad
    with pytest.raises(MessageError):
        msg_to_experience(msg)


def test_experience_checks_feature_size_and_wrong_names():
    assert msg_to_experience(valid_experience(16), 16).features.shape == (16,)
    with pytest.raises(MessageError, match='carries 16 features, expected 64'):
        msg_to_experience(valid_experience(16), 64)
    renamed = valid_experience()
    renamed.name = ['../../etc/evil'] * len(renamed.name)
    with pytest.raises(MessageError, match='names'):
        msg_to_experience(renamed)
    with pytest.raises(MessageError):
        msg_to_experience(JointState())


@pytest.mark.parametrize('bad', HOSTILE_FLOATS)
def test_reward_refuses_nan_inf_and_huge(bad):
    with pytest.raises(MessageError, match='reward'):
        msg_to_reward(Float32(data=bad))
    assert msg_to_reward(Float32(data=-2.5)) == -2.5

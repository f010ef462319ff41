"""How data rides on standard messages: exact round trips and clear refusals of bad input."""
import struct

import numpy as np
import pytest
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, Header

from ami_nodes.ros import messages
from ami_nodes.ros.messages import (
    Experience,
    MessageError,
    action_to_msg,
    blob_to_msg,
    experience_names,
    experience_to_msg,
    features_to_msg,
    image_to_rgb,
    msg_to_action,
    msg_to_blob,
    msg_to_experience,
    msg_to_features,
    msg_to_reward,
    ns_to_stamp,
    rgb_to_image,
    stamp_to_ns,
)


def header(ns: int = 1_234_567_890_123) -> Header:
    return Header(frame_id='camera', stamp=ns_to_stamp(ns))


def test_stamp_round_trip():
    assert stamp_to_ns(ns_to_stamp(1_795_420_000_123_456_789)) == 1_795_420_000_123_456_789


def test_image_round_trip_and_refusals():
    rgb = np.random.default_rng(0).integers(0, 255, (84, 84, 3), dtype=np.uint8)
    msg = rgb_to_image(rgb, header())
    assert (msg.encoding, msg.step, msg.is_bigendian) == ('rgb8', 84 * 3, 0)
    assert np.array_equal(image_to_rgb(msg, 84, 84), rgb)
    with pytest.raises(MessageError, match='expected 96x96'):
        image_to_rgb(rgb_to_image(rgb, header()), 96, 96)


#: A 2x3 test picture, each pixel's (r, g, b) written out by hand.
PICTURE = [[(10, 20, 30), (11, 21, 31), (12, 22, 32)],
           [(40, 50, 60), (41, 51, 61), (42, 52, 62)]]


def hand_made(encoding: str, padding: int = 0, is_bigendian: int = 0) -> Image:
    """The picture in `encoding`, each row followed by `padding` junk bytes."""
    def pixel(r, g, b):
        return {'rgb8': [r, g, b], 'bgr8': [b, g, r], 'rgba8': [r, g, b, 255],
                'bgra8': [b, g, r, 255], 'mono8': [r]}[encoding]
    rows = [bytes(sum((pixel(*p) for p in row), [])) + b'\xee' * padding for row in PICTURE]
    msg = Image(header=header(), height=2, width=3, encoding=encoding,
                is_bigendian=is_bigendian, step=len(rows[0]))
    msg.data = b''.join(rows)
    return msg


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'])
@pytest.mark.parametrize('padding', [0, 5])
@pytest.mark.parametrize('is_bigendian', [0, 1])  # one byte per channel: no byte order
def test_every_accepted_encoding_reads_as_rgb(encoding, padding, is_bigendian):
    msg = hand_made(encoding, padding, is_bigendian)
    rgb = image_to_rgb(msg, 3, 2)
    expected = np.array(PICTURE, dtype=np.uint8)
    if encoding == 'mono8':  # gray is repeated into all three channels
        expected = np.repeat(expected[..., :1], 3, axis=2)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert rgb.tolist() == expected.tolist()


def test_bad_images_are_refused_with_the_reason():
    for encoding in ('yuv422', '16UC1', 'bayer_rggb8', '32FC1', ''):
        msg = hand_made('rgb8')
        msg.encoding = encoding
        with pytest.raises(MessageError, match='expected one of'):
            image_to_rgb(msg)
    short_step = hand_made('rgba8')
    short_step.step = 3 * 3  # rgba8 needs 12 bytes per row of 3
    short_step.data = bytes(short_step.data)[:18]
    with pytest.raises(MessageError, match='step at least 12'):
        image_to_rgb(short_step)
    truncated = hand_made('bgr8', padding=2)
    truncated.data = bytes(truncated.data)[:-1]
    with pytest.raises(MessageError, match='expected 22'):
        image_to_rgb(truncated)


def hand_made_features(values, is_bigendian: int = 0, padding: int = 0) -> Image:
    fmt = ('>' if is_bigendian else '<') + 'f' * len(values)
    msg = Image(header=header(), height=1, width=len(values), encoding='32FC1',
                is_bigendian=is_bigendian, step=4 * len(values) + padding)
    msg.data = struct.pack(fmt, *values) + b'\xee' * padding
    return msg


@pytest.mark.parametrize('is_bigendian', [0, 1])
@pytest.mark.parametrize('padding', [0, 8])
def test_features_in_either_byte_order_and_with_padding(is_bigendian, padding):
    values = [0.5, -1.25, 3.0e-7, 1.0e6]
    features = msg_to_features(hand_made_features(values, is_bigendian, padding), 4)
    assert features.dtype == np.float32 and features.tolist() == pytest.approx(values)


def test_features_round_trip_and_refusals():
    features = np.linspace(-1, 1, 64, dtype=np.float32)
    msg = features_to_msg(features, header())
    assert msg.encoding == '32FC1' and (msg.height, msg.width, msg.step) == (1, 64, 256)
    assert np.array_equal(msg_to_features(msg, 64), features)
    with pytest.raises(MessageError, match='expected 32'):
        msg_to_features(msg, 32)
    two_rows = hand_made_features([1.0, 2.0])
    two_rows.height, two_rows.data = 2, bytes(two_rows.data) * 2
    with pytest.raises(MessageError, match='1xD'):
        msg_to_features(two_rows)
    wrong_type = hand_made_features([1.0, 2.0])
    wrong_type.encoding = '64FC1'
    with pytest.raises(MessageError, match='1xD'):
        msg_to_features(wrong_type)
    short = hand_made_features([1.0, 2.0])
    short.data = bytes(short.data)[:7]
    with pytest.raises(MessageError, match='7 bytes'):
        msg_to_features(short)


@pytest.mark.skipif(messages.BRIDGE is None, reason='cv_bridge (ROS 2) is not installed')
def test_cv_bridge_and_numpy_paths_agree():
    bridge, messages.BRIDGE = messages.BRIDGE, None
    try:
        numpy_rgb = [image_to_rgb(hand_made(e, 5)) for e in messages.IMAGE_CHANNELS]
        numpy_features = msg_to_features(hand_made_features([1.5, -2.0], 1, 4))
    finally:
        messages.BRIDGE = bridge
    for encoding, expected in zip(messages.IMAGE_CHANNELS, numpy_rgb):
        assert np.array_equal(image_to_rgb(hand_made(encoding, 5)), expected), encoding
    assert np.array_equal(msg_to_features(hand_made_features([1.5, -2.0], 1, 4)), numpy_features)


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


def test_features_refuse_empty_and_short_data():
    """(Big-endian features are read, not refused: see the byte-order test.)"""
    empty = features_to_msg(np.zeros(0, dtype=np.float32), header())
    with pytest.raises(MessageError, match='expected 64'):
        msg_to_features(empty, 64)
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

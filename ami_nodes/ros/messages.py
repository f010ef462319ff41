"""How the project's data rides on standard ROS messages, and back.

Standard types only, so `ros2 topic echo`, rqt and rosbag2 work with nothing to build:

- image:      sensor_msgs/Image, rgb8 (read: rgb8, bgr8, rgba8, bgra8, mono8).
- features:   sensor_msgs/Image, encoding 32FC1, height 1, width = feature size.
- action:     sensor_msgs/JointState, one named entry per action head, position = index.
- experience: sensor_msgs/JointState whose names label every field (self-describing).
- weights:    std_msgs/UInt8MultiArray holding a safetensors blob (see persistence.weights).

Every hot-path message keeps the header of the camera frame it derives from. Every input is
untrusted: each decoder here refuses what it cannot use (wrong layout, NaN or infinite values,
values out of range) with a MessageError, and never raises anything else. Images are
converted with ROS 2's cv_bridge when it is installed (a ROS install), else by the numpy code
here, which gives the same arrays (checked at import; tested without cv_bridge).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, Header, MultiArrayDimension, UInt8MultiArray

from ami_nodes.action_space import ACTION_DIMS, HEAD_NAMES, validate_action
from ami_nodes.odometry import MAX_MEASURED_SPEED, plausible_velocity

FEATURES_ENCODING = '32FC1'
#: Model names inside weight blobs: each receiver refuses blobs of any other model. The policy
#: gets PPO's actor-critic or branching_q's Q network (its `algorithm`); the learner of
#: branching_q gets perception_node's encoder.
POLICY_MODEL = 'ami_nodes.learning.ActorCritic'
Q_POLICY_MODEL = 'ami_nodes.learning.BranchingQNetwork'
ENCODER_MODEL = 'ami_nodes.perception.Encoder'
#: Metadata key of the exploration rate shipped with a Q network's weights.
EPSILON_KEY = 'epsilon'


#: Largest magnitude accepted in features, rewards and experience values: beyond it a value is
#: a fault, not a measurement, and would overflow float32 training into NaN.
VALUE_LIMIT = 1e6
#: Largest step counter or version accepted: float64 holds every integer up to 2**53 exactly.
COUNTER_LIMIT = 2**53


class MessageError(ValueError):
    """A message that cannot be used as it is; the text says why and what to do."""


def check_values(values: np.ndarray, what: str, limit: float = VALUE_LIMIT) -> np.ndarray:
    """`values` if all are finite and within +-limit; else a MessageError naming the first bad."""
    bad = ~np.isfinite(values) | (np.abs(values) > limit)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise MessageError(f'{what} has {int(bad.sum())} value(s) that are NaN, infinite or '
                           f'beyond +-{limit:g} (first: [{index}] = {values.flat[index]})')
    return values


def _indices(values: Sequence[float], what: str) -> tuple[int, ...]:
    """Float positions that must be whole numbers of a valid action, as the action tuple."""
    array = check_values(np.asarray(values, dtype=np.float64), what, limit=COUNTER_LIMIT)
    try:
        return validate_action([float(v) for v in array])  # 0.5 is no index: refused
    except ValueError as error:
        raise MessageError(f'{what}: {error}') from error


def stamp_to_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


#: Image encodings image_to_rgb accepts, with their channel count.
IMAGE_CHANNELS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}


def _consistent_bridge():
    """ROS 2's cv_bridge when it is installed and gives exactly the numpy path's results.

    The check at import costs a few microseconds and keeps out the ROS 1 port on the package
    index (`cv-bridge`), which imports but breaks on numpy 2.
    """
    try:
        from cv_bridge import CvBridge
        bridge = CvBridge()
        probe = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
        for encoding in IMAGE_CHANNELS:
            msg = _image_msg(probe[..., :IMAGE_CHANNELS[encoding]].squeeze(), encoding, Header())
            if not np.array_equal(bridge.imgmsg_to_cv2(msg, 'rgb8'), _rgb_from_bytes(msg)):
                return None
        features = np.linspace(-1, 1, 5, dtype=np.float32).reshape(1, -1)
        msg = _image_msg(features, FEATURES_ENCODING, Header())
        if not np.array_equal(bridge.imgmsg_to_cv2(msg).reshape(-1), features.reshape(-1)):
            return None
        for pixels, encoding in ((probe[..., :3], 'rgb8'), (features, FEATURES_ENCODING)):
            ours = _image_msg(pixels, encoding, Header())
            theirs = bridge.cv2_to_imgmsg(np.ascontiguousarray(pixels), encoding=encoding,
                                          header=Header())
            if (bytes(theirs.data), theirs.step, theirs.encoding) != (
                    bytes(ours.data), ours.step, ours.encoding):
                return None
        return bridge
    except Exception:  # noqa: BLE001 (any failure means "use the numpy path")
        return None


def _image_msg(pixels: np.ndarray, encoding: str, header: Header) -> Image:
    """An Image of a contiguous HxW(xC) array, copied from the buffer (not a list)."""
    pixels = np.ascontiguousarray(pixels)
    msg = Image(header=header, height=pixels.shape[0], width=pixels.shape[1],
                encoding=encoding, is_bigendian=0, step=pixels.strides[0])
    msg.data = pixels.tobytes()
    return msg


def rgb_to_image(rgb: np.ndarray, header: Header) -> Image:
    """An HxWx3 uint8 array as an rgb8 Image."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if BRIDGE is not None:
        return BRIDGE.cv2_to_imgmsg(rgb, encoding='rgb8', header=header)
    return _image_msg(rgb, 'rgb8', header)


def image_to_rgb(msg: Image, width: int | None = None, height: int | None = None) -> np.ndarray:
    """An rgb8, bgr8, rgba8, bgra8 or mono8 Image as an HxWx3 RGB array (alpha dropped, gray
    repeated); any other encoding, a wrong size or a data length that does not match
    height x step is a MessageError. Row padding (step > width x channels) is skipped.
    """
    if msg.encoding not in IMAGE_CHANNELS:
        raise MessageError(
            f"image has encoding '{msg.encoding}', expected one of {sorted(IMAGE_CHANNELS)}: "
            f"publish one of those (camera_node publishes rgb8) or convert it before this node")
    if (width is not None and msg.width != width) or (height is not None and msg.height != height):
        raise MessageError(
            f'image is {msg.width}x{msg.height}, expected {width}x{height}: set camera_node '
            f'image_width/image_height to match the model input')
    expected = msg.height * msg.step
    if msg.step < msg.width * IMAGE_CHANNELS[msg.encoding] or len(msg.data) != expected:
        raise MessageError(f'image data has {len(msg.data)} bytes, expected {expected} '
                           f'(height {msg.height} x step {msg.step}, step at least '
                           f'{msg.width * IMAGE_CHANNELS[msg.encoding]} for '
                           f'{msg.width} {msg.encoding} pixels)')
    if BRIDGE is not None:
        return BRIDGE.imgmsg_to_cv2(msg, 'rgb8')
    return _rgb_from_bytes(msg)


def _rgb_from_bytes(msg: Image) -> np.ndarray:
    """The numpy path of image_to_rgb, for a message already checked (8-bit: no byte order)."""
    channels = IMAGE_CHANNELS[msg.encoding]
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)
    pixels = rows[:, :msg.width * channels].reshape(msg.height, msg.width, channels)
    if msg.encoding == 'mono8':
        return np.repeat(pixels, 3, axis=2)
    if msg.encoding.startswith('bgr'):
        return np.ascontiguousarray(pixels[..., 2::-1])
    return np.ascontiguousarray(pixels[..., :3]) if channels == 4 else pixels


def features_to_msg(features: np.ndarray, header: Header) -> Image:
    """A feature vector as a 1xD 32FC1 image (rqt_image_view can even show it as a strip)."""
    vector = np.ascontiguousarray(features, dtype=np.float32).reshape(1, -1)
    if BRIDGE is not None:
        return BRIDGE.cv2_to_imgmsg(vector, encoding=FEATURES_ENCODING, header=header)
    return _image_msg(vector, FEATURES_ENCODING, header)


def msg_to_features(msg: Image, feature_dim: int | None = None) -> np.ndarray:
    """The feature vector of a 1xD 32FC1 image, in either byte order, padding after the
    values allowed; anything else (NaN or infinite values too) is a MessageError."""
    if msg.encoding != FEATURES_ENCODING or msg.height != 1:
        raise MessageError(f"features must be a 1xD '{FEATURES_ENCODING}' image, got "
                           f"{msg.height}x{msg.width} '{msg.encoding}'")
    if feature_dim is not None and msg.width != feature_dim:
        raise MessageError(f'features have {msg.width} values, expected {feature_dim}: '
                           f'perception_node feature_dim and policy_node feature_dim must match')
    if msg.step < msg.width * 4 or len(msg.data) != msg.step:
        raise MessageError(f'features carry {len(msg.data)} bytes with step {msg.step}, '
                           f'expected step = bytes >= {msg.width * 4} ({msg.width} float32)')
    if BRIDGE is not None:
        values = BRIDGE.imgmsg_to_cv2(msg).reshape(-1).astype(np.float32)
    else:
        order = '>' if msg.is_bigendian else '<'
        values = np.frombuffer(msg.data, dtype=f'{order}f4', count=msg.width).astype(np.float32)
    return check_values(values, 'features')


#: cv_bridge where it exists and agrees with the numpy path; None: the numpy path.
BRIDGE = _consistent_bridge()


def action_to_msg(action: Sequence[int], header: Header) -> JointState:
    """An action as a JointState: one named entry per head, position = chosen index."""
    return JointState(header=header, name=list(HEAD_NAMES),
                      position=[float(a) for a in validate_action(action)])


def msg_to_action(msg: JointState) -> tuple[int, ...]:
    """The action indices of an action JointState, validated."""
    if list(msg.name) != list(HEAD_NAMES):
        raise MessageError(f'action names are {list(msg.name)[:8]}, expected {list(HEAD_NAMES)}')
    return _indices(msg.position, 'action')


@dataclass
class Experience:
    """One step the policy took, as the learner needs it."""

    stamp_ns: int
    seq: int
    policy_version: int
    log_prob: float
    value: float
    action: tuple[int, ...]
    features: np.ndarray


_SCALARS = ('seq', 'policy_version', 'log_prob', 'value')


def experience_names(feature_dim: int) -> list[str]:
    """Field names of an experience JointState, in order."""
    return (list(_SCALARS) + [f'action/{h}' for h in HEAD_NAMES]
            + [f'feature/{i:03d}' for i in range(feature_dim)])


def experience_to_msg(exp: Experience, header: Header, names: list[str]) -> JointState:
    values = np.concatenate([
        np.array([exp.seq, exp.policy_version, exp.log_prob, exp.value], dtype=np.float64),
        np.asarray(exp.action, dtype=np.float64),
        np.asarray(exp.features, dtype=np.float64)])
    msg = JointState(header=header, name=names)
    msg.position = values.tolist()
    return msg


def msg_to_experience(msg: JointState, feature_dim: int | None = None) -> Experience:
    """Decode an experience JointState, checking its layout, sizes and every value."""
    names = list(msg.name)
    heads = len(ACTION_DIMS)
    found_dim = len(names) - len(_SCALARS) - heads
    if found_dim <= 0 or names != experience_names(found_dim):
        raise MessageError('experience names do not follow the layout of '
                           'ami_nodes.ros.messages.experience_names')
    if feature_dim is not None and found_dim != feature_dim:
        raise MessageError(f'experience carries {found_dim} features, expected {feature_dim}: '
                           f'policy_node and learner_node feature_dim must match')
    if len(msg.position) != len(names):
        raise MessageError(f'experience has {len(msg.position)} values for {len(names)} names')
    values = np.asarray(msg.position, dtype=np.float64)
    seq, version = check_values(values[:2], 'experience seq/policy_version', COUNTER_LIMIT)
    if seq != int(seq) or seq < 0 or version != int(version) or version < -1:
        raise MessageError(f'experience seq {seq} and policy_version {version} must be whole '
                           f'numbers, seq >= 0 and policy_version >= -1')
    log_prob, value = check_values(values[2:4], 'experience log_prob/value')
    return Experience(
        stamp_ns=stamp_to_ns(msg.header.stamp), seq=int(seq), policy_version=int(version),
        log_prob=float(log_prob), value=float(value),
        action=_indices(values[4:4 + heads], 'experience action'),
        features=check_values(values[4 + heads:], 'experience features').astype(np.float32))


def msg_to_reward(msg: Float32) -> float:
    """The reward a Float32 carries; NaN, infinite or beyond +-VALUE_LIMIT is a MessageError."""
    return float(check_values(np.array([msg.data], dtype=np.float64), 'reward')[0])


def msg_to_body_velocity(msg: TwistStamped) -> tuple[float, float, float]:
    """(forward, left, yaw_rate) of a measured body velocity; a component that is not finite
    or above MAX_MEASURED_SPEED is a MessageError (integrated, it would throw the dead-reckoned
    pose far off for good)."""
    twist = msg.twist
    values = (twist.linear.x, twist.linear.y, twist.angular.z)
    if not plausible_velocity(values):
        raise MessageError(f'velocity not finite or above {MAX_MEASURED_SPEED:g} {values}')
    return values


def blob_to_msg(blob: bytes, label: str) -> UInt8MultiArray:
    """A byte blob as a UInt8MultiArray; `label` says what it holds."""
    msg = UInt8MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label, size=len(blob), stride=len(blob))]
    msg.data = blob
    return msg


def msg_to_blob(msg: UInt8MultiArray) -> bytes:
    return bytes(msg.data)

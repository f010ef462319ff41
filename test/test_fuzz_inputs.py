"""Fuzzing the running system: hostile messages on every input it has, and it keeps acting.

The whole system runs once (world + five nodes, ami_launch). Every topic a node subscribes to
and every service it serves gets a bounded number of generated bad inputs of the right type
from a seeded generator: NaN and inf, empty and huge arrays, wrong encodings, sizes and names,
random bytes, hostile strings and paths, rapid service toggling, parameter values no
parameter allows; ami_launch's own
subscriptions (/diagnostics, the checkpoint result) get made-up statuses and results too.
Then every node must still be the process it was, the policy must still publish cmd_vel,
each attacked node must have counted refusals on /diagnostics, and after the stop the world
must hold no input.
"""
import json
from collections.abc import Callable

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from ros_harness import REPO, Watcher, answered, children, diagnostic_values, rejected, start_launcher, stop
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, Header, String, UInt8MultiArray
from std_srvs.srv import SetBool, Trigger

from ami_nodes import system
from ami_nodes.action_space import ACTION_DIMS, HEAD_NAMES
from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.perception.encoder import Encoder
from ami_nodes.persistence.weights import encode_weights
from ami_nodes.ros import qos
from ami_nodes.ros.checkpointing import DONE_TOPIC, REQUEST_TOPIC
from ami_nodes.ros.messages import (
    ENCODER_MODEL,
    FEATURES_ENCODING,
    POLICY_MODEL,
    blob_to_msg,
    experience_names,
    ns_to_stamp,
)
from ami_nodes.tools.control import ACTING_SERVICES, LEARNING_SERVICES
from ami_nodes.tools.launch_config import write_config

# whole systems: pytest.ini's 300 s is for one hung node; a loaded CI machine may need more
pytestmark = [pytest.mark.ros, pytest.mark.timeout(900)]
SEED = 20261124
PER_INPUT = 30  # generated messages per topic
TOGGLES = 20  # calls per SetBool service
FEATURE_DIM = 64
MB = 1 << 20

HOSTILE_NAMES = ['../../etc/evil', '/etc/passwd', '..', '.staging', '', ' ', 'a' * 5000,
                 '2020-01-01_00-00-00', '2020-01-01_00-00-00/../../evil', '$(touch evil)',
                 '%s%n%x', '\n\r\t', 'ü' * 40, 'policy_node', '2020-01-01_00-00-00_9999999']


def random_text(rng: np.random.Generator, size: int) -> str:
    """Any Unicode text without NUL or surrogates (which a ROS string cannot carry)."""
    codes = rng.integers(1, 0x10FFFF, size)
    return ''.join(chr(c) for c in codes if not 0xD800 <= c < 0xE000)


def stamped(rng: np.random.Generator) -> Header:
    """Any stamp a Time can hold (seconds are int32)."""
    stamp = ns_to_stamp(int(rng.integers(0, 2**31 * 10**9)))
    return Header(frame_id=random_text(rng, 4), stamp=stamp)


def bad_images(rng: np.random.Generator, i: int) -> Image:
    if i == 0:  # huge (3 MB) and of the wrong size
        return Image(height=1024, width=1024, encoding='rgb8', step=3072,
                     data=bytes(1024 * 1024 * 3))
    kind = i % 5
    msg = Image(header=stamped(rng), height=84, width=84, encoding='rgb8', step=252)
    if kind == 0:
        msg.encoding = str(rng.choice(['bgr8', 'mono8', FEATURES_ENCODING, '', 'rgb16']))
        msg.data = rng.bytes(84 * 252)
    elif kind == 1:
        msg.height, msg.width = (int(v) for v in rng.integers(1, 200, 2))
        msg.step = msg.width * 3
        msg.data = rng.bytes(msg.height * msg.step)
    elif kind == 2:
        msg.data = rng.bytes(int(rng.integers(0, 84 * 252)))  # too short
    elif kind == 3:
        msg.step, msg.data = 0, b''
    else:
        msg.height = msg.width = msg.step = 0
        msg.encoding = random_text(rng, 8)
    return msg


def bad_features(rng: np.random.Generator, i: int) -> Image:
    if i == 0:  # huge: a million floats (4 MB)
        return Image(height=1, width=MB, encoding=FEATURES_ENCODING, step=4 * MB,
                     data=bytes(4 * MB))
    values = rng.normal(size=FEATURE_DIM).astype(np.float32)
    kind = i % 5
    if kind == 0:
        values[rng.integers(0, FEATURE_DIM)] = rng.choice([np.nan, np.inf, -np.inf, 1e30])
    elif kind == 1:
        values = values[:int(rng.integers(0, FEATURE_DIM))]  # empty or short
    msg = Image(header=stamped(rng), height=1, width=values.size, encoding=FEATURES_ENCODING,
                step=values.size * 4, data=values.tobytes())
    if kind == 2:
        msg.encoding = str(rng.choice(['rgb8', '32FC3', '64FC1', random_text(rng, 6)]))
    elif kind == 3:
        msg.is_bigendian = 1
    elif kind == 4:
        msg.data = rng.bytes(int(rng.integers(0, 1000)))
    return msg


def bad_actions(rng: np.random.Generator, i: int) -> JointState:
    if i == 0:  # huge: 50,000 entries
        return JointState(name=['move'] * 50000, position=[0.0] * 50000)
    names, position = list(HEAD_NAMES), [float(rng.integers(0, d)) for d in ACTION_DIMS]
    kind = i % 5
    if kind == 0:
        position[rng.integers(0, 5)] = float(rng.choice([np.nan, np.inf, -np.inf]))
    elif kind == 1:
        position[rng.integers(0, 5)] = float(rng.choice([-1.0, 3.0, 0.5, 1e300]))
    elif kind == 2:
        names = [random_text(rng, 5) for _ in names]
    elif kind == 3:
        position = position[:int(rng.integers(0, 5))]
    else:
        names, position = [], []
    return JointState(header=stamped(rng), name=names, position=position)


def bad_commands(rng: np.random.Generator, i: int) -> TwistStamped:
    msg = TwistStamped(header=stamped(rng))
    parts = [(msg.twist.linear, 'x'), (msg.twist.linear, 'y'), (msg.twist.linear, 'z'),
             (msg.twist.angular, 'z')]
    for vector, axis in parts:
        setattr(vector, axis, float(rng.uniform(-1, 1)))
    vector, axis = parts[i % len(parts)]
    setattr(vector, axis, float(rng.choice([np.nan, np.inf, -np.inf])))
    return msg


def bad_experience(rng: np.random.Generator, i: int, now_ns: int) -> JointState:
    if i == 0:  # huge: the layout of 65536 features, with NaN in it
        names = experience_names(65536)
        return JointState(name=names, position=[np.nan] * len(names))
    names = experience_names(FEATURE_DIM)
    values = [float(rng.integers(0, 1000)), 0.0, -4.0, 0.0,
              *(float(rng.integers(0, d)) for d in ACTION_DIMS),
              *rng.normal(size=FEATURE_DIM)]
    header = Header(stamp=ns_to_stamp(now_ns))
    kind = i % 8
    if kind == 0:
        values[int(rng.integers(0, len(values)))] = float(rng.choice([np.nan, np.inf, -np.inf]))
    elif kind == 1:
        values[int(rng.integers(0, 2))] = float(rng.choice([-5.0, 0.5, 1e300]))
    elif kind == 2:
        values[4 + int(rng.integers(0, 5))] = 7.0
    elif kind == 3:
        names = experience_names(16)
        values = values[:len(names)]
    elif kind == 4:
        names = [random_text(rng, 3) for _ in names]
    elif kind == 5:
        values = values[:-1]
    elif kind == 6:
        header.stamp = ns_to_stamp(now_ns + 86400 * 10**9)  # a day ahead
    else:
        values[1] = float(2**52)  # well formed, but a policy_version no learner shipped
    return JointState(header=header, name=names, position=values)


def bad_weights(rng: np.random.Generator, i: int) -> UInt8MultiArray:
    if i == 0:
        return blob_to_msg(rng.bytes(2 * MB), 'random')
    kind = i % 6
    if kind in (0, 1, 2):
        model = ActorCritic(FEATURE_DIM, ACTION_DIMS, 128 if kind < 2 else 32)
        if kind == 0:
            next(model.parameters()).data[0] = float('nan')
        blob = encode_weights(model.state_dict(), 10**9, POLICY_MODEL if kind != 1 else 'other')
        return blob_to_msg(blob, 'hostile')
    if kind == 3:
        blob = encode_weights(ActorCritic(FEATURE_DIM, ACTION_DIMS, 128).state_dict(), 10**9,
                              POLICY_MODEL)
        return blob_to_msg(blob[:int(rng.integers(0, len(blob)))], 'truncated')
    if kind == 4:
        return blob_to_msg(b'\x80\x04\x95' + rng.bytes(int(rng.integers(0, 4096))), 'pickle?')
    header = json.dumps({'__metadata__': {'model': POLICY_MODEL, 'version': [1], 'sha256': 5}})
    return blob_to_msg(len(header).to_bytes(8, 'little') + header.encode(), 'bad header')


def bad_encoders(rng: np.random.Generator, i: int) -> UInt8MultiArray:
    """What the branching_q learner must refuse on encoder_weights: random bytes, other shapes,
    another model's name, a blob cut short."""
    kind = i % 4
    if kind == 0:
        return blob_to_msg(rng.bytes(int(rng.integers(0, 4096))), 'random')
    encoder = Encoder(feature_dim=FEATURE_DIM if kind != 1 else 32)
    blob = encode_weights(encoder.state_dict(), 10**9, ENCODER_MODEL if kind != 2 else POLICY_MODEL)
    return blob_to_msg(blob[:int(rng.integers(0, len(blob)))] if kind == 3 else blob, 'hostile encoder')


def bad_rewards(rng: np.random.Generator, i: int) -> Float32:
    return Float32(data=float(rng.choice([np.nan, np.inf, -np.inf, 1e30, -3e38])))


def bad_requests(rng: np.random.Generator, i: int) -> String:
    if i < len(HOSTILE_NAMES):
        return String(data=HOSTILE_NAMES[i])
    return String(data=random_text(rng, int(rng.integers(0, 64))))


def bad_replies(rng: np.random.Generator, i: int) -> String:
    if i == 0:
        return String(data='x' * MB)
    name = HOSTILE_NAMES[i % len(HOSTILE_NAMES)]
    kind = i % 6
    text = [lambda: random_text(rng, int(rng.integers(0, 200))),
            lambda: '[' * 5000,
            lambda: json.dumps([name, 'policy_node', True]),
            lambda: json.dumps({'name': name, 'node': 'policy_node', 'ok': True, 'error': ''}),
            lambda: json.dumps({'name': '2020-01-01_00-00-00', 'node': name, 'ok': 'yes'}),
            lambda: json.dumps({'name': '2020-01-01_00-00-00', 'node': 'camera_node',
                                'ok': True, 'error': ''})][kind]()
    return String(data=text)


def bad_diagnostics(rng: np.random.Generator, i: int) -> DiagnosticArray:
    """Made-up statuses for ami_launch's status line (never named like a node of the system)."""
    return DiagnosticArray(status=[
        DiagnosticStatus(level=bytes([int(rng.integers(0, 256))]),
                         name=f'fuzz {random_text(rng, 8)}',
                         message=random_text(rng, int(rng.integers(0, 2000))),
                         values=[KeyValue(key=random_text(rng, 5), value=random_text(rng, 50))])
        for _ in range(int(rng.integers(0, 20)))])


def bad_parameters(rng: np.random.Generator) -> SetParameters.Request:
    """Values no parameter allows: NaN, infinite, out of range, the wrong type, unknown names."""
    names = ['walk_speed', 'turn_rate', 'deadman_timeout', 'learning_rate', 'action_mode',
             'checkpoint_period', 'feature_dim', random_text(rng, 6), '../../etc/evil']
    values = [ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float('nan')),
              ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float('inf')),
              ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=-1e308),
              ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=-2**63),
              ParameterValue(type=ParameterType.PARAMETER_STRING,
                             string_value=random_text(rng, 20)),
              ParameterValue(type=ParameterType.PARAMETER_BYTE_ARRAY, byte_array_value=[b'x'])]
    return SetParameters.Request(parameters=[
        Parameter(name=str(rng.choice(names)), value=values[int(rng.integers(0, len(values)))])
        for _ in range(int(rng.integers(1, 4)))])


@pytest.mark.parametrize('task', [False, True], ids=['ami.yaml', 'ami_target.yaml'])
def test_hostile_inputs_are_refused_and_the_system_keeps_acting(tmp_path, task):
    """`task`: config/ami_target.yaml, whose branching_q learner also reads frames and encoders."""
    config = write_config(tmp_path / 'ami.yaml', {
        'learner_node': {'rollout_length': 64, 'min_new_samples': 64}},
        base=REPO / 'config' / ('ami_target.yaml' if task else 'ami.yaml'))
    rng = np.random.default_rng(SEED)
    watcher = Watcher('fuzz_watcher')
    node = watcher.node
    commands = watcher.subscribe(TwistStamped, 'cmd_vel', qos.SENSOR)
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics', 100)
    now_ns = lambda: node.get_clock().now().nanoseconds  # noqa: E731
    attacks: list[tuple[object, Callable[[int], object]]] = [
        (node.create_publisher(Image, 'image_raw', qos.STREAM), lambda i: bad_images(rng, i)),
        (node.create_publisher(Image, 'features', qos.STREAM), lambda i: bad_features(rng, i)),
        (node.create_publisher(JointState, 'action', qos.STREAM), lambda i: bad_actions(rng, i)),
        (node.create_publisher(TwistStamped, 'cmd_vel', qos.STREAM),
         lambda i: bad_commands(rng, i)),
        (node.create_publisher(TwistStamped, 'measured_velocity', qos.STREAM),
         lambda i: bad_commands(rng, i)),
        (node.create_publisher(JointState, 'experience', qos.EXPERIENCE),
         lambda i: bad_experience(rng, i, now_ns())),
        (node.create_publisher(UInt8MultiArray, 'policy_weights', qos.LATCHED),
         lambda i: bad_weights(rng, i)),
        (node.create_publisher(Float32, 'reward', qos.STREAM), lambda i: bad_rewards(rng, i)),
        *([(node.create_publisher(UInt8MultiArray, 'encoder_weights', qos.LATCHED),
            lambda i: bad_encoders(rng, i))] if task else []),
        (node.create_publisher(String, REQUEST_TOPIC, qos.STREAM),
         lambda i: bad_requests(rng, i)),
        (node.create_publisher(String, DONE_TOPIC, qos.STREAM), lambda i: bad_replies(rng, i)),
        (node.create_publisher(DiagnosticArray, '/diagnostics', 10),
         lambda i: bad_diagnostics(rng, i)),
        (node.create_publisher(String, f'{system.LEARNER}/checkpoint_result', qos.LATCHED),
         lambda i: bad_replies(rng, i)),
    ]
    toggled = [node.create_client(SetBool, name) for name in ACTING_SERVICES + LEARNING_SERVICES]
    save = node.create_client(Trigger, f'{system.LEARNER}/save')
    parameters = [node.create_client(SetParameters, f'/{spec.name}/set_parameters')
                  for spec in system.NODES]
    log = tmp_path / 'launch.log'
    launcher = start_launcher(config, tmp_path / 'checkpoints', log, log_dir=tmp_path / 'runs',
                              status_period=1)
    try:
        assert watcher.spin_until(lambda: len(commands) > 0, 90.0), log.read_text()
        assert watcher.spin_until(lambda: all(p.get_subscription_count() > 0 for p, _ in attacks)
                                  and all(c.service_is_ready()
                                          for c in [*toggled, save, *parameters]), 30.0)
        assert all(answered(watcher, c, SetBool.Request(data=True)) for c in toggled)
        assert answered(watcher, save, Trigger.Request())
        processes = children(launcher.pid)
        assert len(processes) == len(system.NODES) + 1, processes  # and the world

        for i in range(PER_INPUT):
            for publisher, generate in attacks:
                publisher.publish(generate(i))
            if i < TOGGLES:
                for client in toggled:  # a flood: answers are not waited for
                    client.call_async(SetBool.Request(data=bool(rng.integers(0, 2))))
                if i % 4 == 0:
                    save.call_async(Trigger.Request())
                for client in parameters:
                    client.call_async(bad_parameters(rng))
            watcher.spin_for(0.02)
        # A flood may overflow a service's request queue (keep last 10): the oldest calls are
        # dropped unanswered, as ROS does. The last call of each client is the newest, so it
        # is answered, and leaves the system acting and learning.
        final = [client.call_async(SetBool.Request(data=True)) for client in toggled]
        assert watcher.spin_until(lambda: all(f.done() for f in final), 60.0), (
            f'{sum(not f.done() for f in final)} final calls unanswered; launcher exit code '
            f'{launcher.poll()}', log.read_text()[-3000:])
        assert all(f.result().success for f in final)
        states = {'policy_node': 'acting', 'osc_bridge_node': 'enabled',
                  'learner_node': 'learning'}
        assert watcher.spin_until(lambda: all(
            diagnostic_values(diagnostics, node)[-1][key] == 'True'
            for node, key in states.items()), 30.0), 'not left acting and learning'

        attacked = ('perception_node', 'policy_node', 'learner_node', 'osc_bridge_node')
        assert watcher.spin_until(lambda: all(rejected(diagnostics, n, 1) for n in attacked),
                                  30.0), {n: diagnostic_values(diagnostics, n)[-1:]
                                          for n in attacked}
        acted = len(commands)
        assert watcher.spin_until(lambda: len(commands) >= acted + 20, 60.0), \
            'the policy stopped acting after the fuzzing'
        assert children(launcher.pid) == processes, 'a node died (or was restarted)'
        learner_version = float(diagnostic_values(diagnostics, 'learner_node')[-1]['version'])
        assert learner_version < 1000, 'a made-up policy_version renumbered the learner'
        assert all('rejected_inputs' in (diagnostic_values(diagnostics, spec.name) or [{}])[-1]
                   for spec in system.NODES), 'every node reports rejected_inputs'
    finally:
        code = stop(launcher)  # after a failed assert too: the children stop cleanly
        watcher.close()
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert 'Traceback' not in output, output[output.index('Traceback') - 2000:][:5000]
    summary = json.loads(output.split('AMI_WORLD_SUMMARY ', 1)[1].splitlines()[0])
    assert summary['held_inputs'] == {}, summary
    assert not (tmp_path / 'etc').exists() and not (tmp_path / 'evil').exists()
    assert not any('evil' in str(p) for p in tmp_path.rglob('*')), 'a hostile path was written'
    assert f'refused {REQUEST_TOPIC}' in output and f'refused {DONE_TOPIC}' in output
    if task:   # the learner's own inputs in this config
        learner_lines = [line for line in output.splitlines() if line.startswith(f'[{system.LEARNER}]')]
        assert all(any(f'refused {topic}' in line for line in learner_lines)
                   for topic in ('encoder_weights', 'image_raw')), learner_lines[-20:]
    # ami_launch refused the made-up results and still asked for its final save (which may
    # time out under load, so its outcome is not asserted here).
    assert 'ignored a malformed checkpoint result' in output
    assert '[ami_launch] final checkpoint: ' in output, output[-3000:]
    assert ' set to ' not in output, 'a parameter took a value no parameter allows'

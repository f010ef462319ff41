"""policy_node: the actor. Features in, cmd_vel and experience out, one tick per frame.

The actor (ami_nodes.learning.actor) runs under torch.inference_mode and never waits on
training: new weights are decoded, validated and built on a worker thread and swapped in
between ticks. `algorithm` says which network the learner ships: PPO's actor-critic, or
branching_q's Q network, whose weights carry the exploration rate to act with. This module
only wires the actor to topics, parameters and services.
"""
from __future__ import annotations

import threading

from geometry_msgs.msg import Twist, TwistStamped
from rclpy._rclpy_pybind11 import RCLError
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, Header, Int64, UInt8MultiArray
from std_srvs.srv import SetBool

from ami_nodes.action_space import NOOP, action_to_velocity
from ami_nodes.learning.actor import ACTION_MODES, ALGORITHMS, MODES_OF, Actor
from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.learning.branching_q import BranchingQNetwork
from ami_nodes.learning.place_novelty import BLIND_HOLDS
from ami_nodes.monitoring.rates import RateMeter, RollingStats
from ami_nodes.persistence.tensors import tensor_spec
from ami_nodes.persistence.weights import WeightsError, WeightsPacket, decode_weights
from ami_nodes.ros import checkpointing, diagnostics, qos
from ami_nodes.ros.errors import ConfigureError
from ami_nodes.ros.lifecycle import ManagedNode
from ami_nodes.ros.messages import (
    EPSILON_KEY,
    POLICY_MODEL,
    Q_POLICY_MODEL,
    Experience,
    MessageError,
    action_to_msg,
    experience_names,
    experience_to_msg,
    msg_to_blob,
    msg_to_body_velocity,
    msg_to_features,
    stamp_to_ns,
)
from ami_nodes.ros.params import VELOCITY_PARAMETERS, Param, torch_parameters, velocity_limits
from ami_nodes.ros.spin import run_node
from ami_nodes.torch_device import configure_torch

PARAMETERS = (
    *torch_parameters('the actor'),
    Param('algorithm', 'ppo', "The learner's algorithm, so the network its weights hold: 'ppo' "
          "(an actor-critic) or 'branching_q' (a Q network; action_mode epsilon_greedy)",
          choices=ALGORITHMS),
    Param('feature_dim', 64, 'Size of the feature vector from perception_node', 1, 65536),
    Param('hidden_size', 128, 'Hidden units of the actor-critic MLP', 1, 65536),
    Param('action_mode', 'sample', "How actions are chosen: 'sample' from the policy, its "
          "most likely action ('greedy'), 'uniform' at random every tick, 'sticky': a "
          "random action held for sticky_min_s..sticky_max_s of frame-stamp time (the random "
          "modes are the baselines curiosity is measured against; their experience carries "
          "the uniform log-prob), 'held_sample': sampled from the policy and held as "
          "'sticky' holds, one experience step per hold, or 'held_bandit': held as "
          "'held_sample', chosen by a per-head bandit paid the novelty of the places each hold "
          "reached (dead-reckoned from measured_velocity); with algorithm branching_q, "
          "'epsilon_greedy': every decision_s the Q network's greedy action or, with the "
          'probability epsilon its weights carry, a random one held as sticky holds',
          choices=ACTION_MODES, live=True),
    Param('sticky_min_s', 0.25, "Shortest hold (s, frame stamps) of a 'sticky', "
          "'held_sample' or 'held_bandit' action", 0.001, 3600.0, live=True),
    Param('sticky_max_s', 2.0, "Longest hold (s, frame stamps) of a 'sticky', "
          "'held_sample' or 'held_bandit' action; each hold is drawn uniformly between the two",
          0.001, 3600.0, live=True),
    Param('decision_s', 0.25, "Time (s, frame stamps) between two 'epsilon_greedy' decisions; "
          'each is one step of experience', 0.001, 3600.0, live=True),
    Param('seed', 0, 'Seed of the initial weights and of action sampling', 0, 2**31 - 1),
    Param('cmd_vel_stamped', True, 'Publish geometry_msgs/TwistStamped (else Twist)'),
    *VELOCITY_PARAMETERS,
    *checkpointing.PARAMETERS,
)


class PolicyNode(ManagedNode):
    """A managed node: configure builds the actor and loads the checkpoint, activate starts
    acting, deactivate sends a stop command and acts no more."""

    def __init__(self) -> None:
        super().__init__('policy_node', PARAMETERS, self._apply, refuse=self._refuse)
        self._actor: Actor | None = None
        self._version = -1  # its own random weights, until the learner's first version
        self._pending: tuple[ActorCritic | BranchingQNetwork, int, str, float | None] | None = None
        self._limits = velocity_limits(self.p)
        self._acting = True
        self._seq = 0
        self._idle_frames = 0  # features that arrived while inactive or paused: not acted on
        self._names = experience_names(self.p.feature_dim)
        self._tick_ms = RollingStats()
        self._latency_ms = RollingStats()
        self._rate = RateMeter()
        self._weights_lock = threading.Condition()
        self._incoming: bytes | None = None
        self._closing = False
        self._worker: threading.Thread | None = None

    def build(self) -> None:
        problem = self._mode_problem(self.p.algorithm, self.p.action_mode)
        if problem:
            raise ConfigureError(problem)
        self._actor = Actor(self.p.feature_dim, self.p.hidden_size, self.p.action_mode,
                            self.p.seed, configure_torch(self.p.device, self.p.torch_threads),
                            self.p.sticky_min_s, self.p.sticky_max_s, self.p.algorithm,
                            self.p.decision_s)
        self._version, self._pending, self._seq = -1, None, 0
        checkpointing.resume(self, self.p, self._restore)
        self._closing = False
        self._worker = threading.Thread(target=self._apply_loop, name='weights', daemon=True)
        self._worker.start()

    def wire(self) -> None:
        checkpointing.CheckpointParticipant(self, self.p.checkpoint_dir, self._snapshot,
                                            self.errors)
        twist_type = TwistStamped if self.p.cmd_vel_stamped else Twist
        self._cmd_pub = self.create_lifecycle_publisher(twist_type, 'cmd_vel', qos.STREAM)
        self._action_pub = self.create_lifecycle_publisher(JointState, 'action', qos.STREAM)
        self._experience_pub = self.create_lifecycle_publisher(JointState, 'experience',
                                                                qos.EXPERIENCE)
        self._version_pub = self.create_publisher(Int64, '~/version', qos.LATCHED)
        self._latency_pub = self.create_lifecycle_publisher(Float32, '~/latency_ms',
                                                            qos.MONITOR)
        guard = self.errors.guard
        self.create_subscription(Image, 'features', guard('features', self._on_features),
                                 qos.LATEST)
        self.create_subscription(UInt8MultiArray, 'policy_weights',
                                 guard('policy_weights', self._on_weights), qos.LATCHED)
        self.create_service(SetBool, '~/set_acting', guard('set_acting', self._on_set_acting))
        self.create_subscription(TwistStamped, 'measured_velocity',
                                 guard('measured_velocity', self._on_measured_velocity), qos.STREAM)

    def start(self) -> None:
        self._version_pub.publish(Int64(data=self._version))

    def stop(self, why: str) -> None:
        """A stop command, unless a stop signal closed the context (the bridge then releases
        every input itself). rclpy closes it from its signal thread, so it can close between
        the check and the publish (seen under `ros2 launch`: exit code 1 at Ctrl-C)."""
        if not self.context.ok():
            return
        try:
            self._publish_motion(NOOP, Header(stamp=self.get_clock().now().to_msg()))
        except RCLError:
            if self.context.ok():
                raise

    def save_and_drop(self, final_checkpoint: bool) -> None:
        """The learner's checkpoints hold this node's part (it cannot make one alone), so
        cleanup only stops the weights worker and drops the actor."""
        with self._weights_lock:
            self._closing = True
            self._weights_lock.notify()
        self._worker.join(timeout=2.0)
        self._actor = None

    # --- the hot path -----------------------------------------------------------------
    def _on_features(self, msg: Image) -> None:
        if not self.configured:
            return
        started = self.get_clock().now().nanoseconds
        self._swap_pending()
        try:
            features = msg_to_features(msg, self.p.feature_dim)
        except MessageError as error:
            self.errors.report('features', str(error))
            return
        if not (self.active and self._acting):
            self._idle_frames += 1
            return
        header = msg.header
        stamp_ns = stamp_to_ns(header.stamp)
        decision = self._actor.decide(features, stamp_ns)
        self._publish_motion(decision.action, header)
        if decision.fresh:  # a held choice is one step of experience, not one per tick
            self._experience_pub.publish(experience_to_msg(Experience(
                stamp_ns=stamp_ns, seq=self._seq, policy_version=self._version,
                log_prob=decision.log_prob, value=decision.value, action=decision.action,
                features=features), header, self._names))
            self._seq += 1
        now = self.get_clock().now().nanoseconds
        latency = (now - stamp_ns) / 1e6
        self._latency_ms.add(latency)
        self._tick_ms.add((now - started) / 1e6)
        self._rate.tick()
        self._latency_pub.publish(Float32(data=latency))

    def _on_measured_velocity(self, msg: TwistStamped) -> None:
        """Odometry for the held_bandit explorer (osc_bridge_node's, or a robot base's twist)."""
        try:
            values = msg_to_body_velocity(msg)
        except MessageError as error:
            self.errors.report('measured_velocity', str(error))
            return
        if self.configured:
            self._actor.place_bandit.observe_velocity(*values, stamp_to_ns(msg.header.stamp))

    def _publish_motion(self, action: tuple[int, ...], header: Header) -> None:
        velocity = action_to_velocity(action, self._limits)
        twist = Twist()
        twist.linear.x, twist.linear.y = velocity.linear_x, velocity.linear_y
        twist.linear.z, twist.angular.z = velocity.linear_z, velocity.angular_z
        self._cmd_pub.publish(TwistStamped(header=header, twist=twist)
                              if self.p.cmd_vel_stamped else twist)
        self._action_pub.publish(action_to_msg(action, header))

    def _swap_pending(self) -> None:
        with self._weights_lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            model, self._version, checksum, epsilon = pending
            self._actor.adopt(model, epsilon)
            self._version_pub.publish(Int64(data=self._version))
            # at most every 10 s: a Q learner ships about once a second (~/version has each)
            self.get_logger().info(f'applied policy weights v{self._version} '
                                   f'(sha256 {checksum[:12]})', throttle_duration_sec=10.0)

    # --- weights, off the hot path ----------------------------------------------------
    def _on_weights(self, msg: UInt8MultiArray) -> None:
        with self._weights_lock:
            self._incoming = msg_to_blob(msg)
            self._weights_lock.notify()

    def _apply_loop(self) -> None:
        """Decode and build incoming weights until cleanup (the blob that arrived while
        unconfigured is the first one built)."""
        expected = tensor_spec(self._actor.model.state_dict())
        while True:
            with self._weights_lock:
                self._weights_lock.wait_for(lambda: self._incoming is not None or self._closing)
                if self._closing:
                    return
                blob, self._incoming = self._incoming, None
                newest = self._pending[1] if self._pending else self._version
            try:
                model, packet = self._decode(blob, expected, newest)
            except Exception as error:  # noqa: BLE001 - a bad blob must not end this thread
                self.errors.report('policy_weights',
                                    f'rejected, keeping v{self._version}: {error}')
                continue
            if model is None:
                continue  # the learner re-published what we already have
            with self._weights_lock:
                self._pending = (model, packet.version, packet.metadata.get('sha256', ''),
                                 self._epsilon_of(packet))

    def _decode(self, blob: bytes, expected, newest: int
                ) -> tuple[ActorCritic | BranchingQNetwork | None, WeightsPacket]:
        """The model a blob holds (None: version `newest` again); WeightsError if unusable."""
        model = Q_POLICY_MODEL if self.p.algorithm == 'branching_q' else POLICY_MODEL
        packet = decode_weights(blob, expected=expected, model=model)
        if packet.version == newest:
            return None, packet
        if packet.version < newest:
            raise WeightsError(f'version {packet.version} is older than v{newest}')
        self._epsilon_of(packet)
        try:
            return self._actor.build(packet.tensors), packet
        except ValueError as error:
            raise WeightsError(f'v{packet.version}: {error}') from error

    def _epsilon_of(self, packet: WeightsPacket) -> float | None:
        """The exploration rate a Q network's weights carry (None for PPO's); WeightsError
        when it is missing or not a probability."""
        if self.p.algorithm != 'branching_q':
            return None
        text = packet.metadata.get(EPSILON_KEY)
        try:
            epsilon = float(text)
        except (TypeError, ValueError):
            epsilon = float('nan')
        if not 0.0 <= epsilon <= 1.0:
            raise WeightsError(f'v{packet.version}: {EPSILON_KEY} is {text!r}, expected a probability in [0, 1]')
        return epsilon

    def _restore(self, part) -> None:
        self._actor.load_state(part.model('policy', like=self._actor.model.state_dict()))
        self._version = int(part.interaction['policy']['version'])
        self._seq = int(part.interaction['policy']['seq'])
        if 'place_bandit' in part.interaction['policy']:   # checkpoints from before held_bandit lack it
            self._actor.place_bandit.load_state_dict(part.interaction['policy']['place_bandit'])
        self._actor.epsilon = float(part.interaction['policy'].get('epsilon', 1.0))

    def _snapshot(self) -> checkpointing.Part | None:
        if not self.configured:
            return None
        return {'models': {'policy': self._actor.state()},
                'interaction': {'policy': {'version': self._version, 'seq': self._seq,
                                           'epsilon': self._actor.epsilon,
                                           'place_bandit': self._actor.place_bandit.state_dict()}},
                'params': checkpointing.node_params(self)}

    def _on_set_acting(self, request: SetBool.Request, response: SetBool.Response):
        self._acting = request.data
        if not self._acting:
            self.stop('paused')
        response.success = True
        response.message = 'acting' if self._acting else 'paused: stop command sent'
        return response

    @staticmethod
    def _mode_problem(algorithm: str, action_mode: str) -> str | None:
        if action_mode not in MODES_OF[algorithm]:
            return (f'action_mode {action_mode!r} does not act with the {algorithm} network: with '
                    f'algorithm {algorithm} use one of {MODES_OF[algorithm]}')
        return None

    @classmethod
    def _refuse(cls, values) -> str | None:
        problem = cls._mode_problem(values.algorithm, values.action_mode)
        if problem:
            return problem
        if values.sticky_min_s > values.sticky_max_s:
            return (f'sticky_min_s ({values.sticky_min_s}) must not exceed sticky_max_s '
                    f'({values.sticky_max_s}); set both in one call to move the range')
        return None

    def _apply(self, name: str, value) -> None:
        """Live parameters, between ticks (the executor runs this and the hot path in turn)."""
        if self._actor is None and name in ('action_mode', 'sticky_min_s', 'sticky_max_s', 'decision_s'):
            pass  # configure builds the actor from the new value
        elif name == 'action_mode':
            self._actor.set_action_mode(value)
        elif name in ('sticky_min_s', 'sticky_max_s'):
            self._actor.set_sticky_range(self.p.sticky_min_s, self.p.sticky_max_s)
        elif name == 'decision_s':
            self._actor.set_decision_period(value)
        else:  # a speed
            self._limits = velocity_limits(self.p)
        self.get_logger().info(f'{name} set to {value!r}')

    def report(self) -> diagnostics.Report:
        values = {'acting': self._acting, 'policy_version': self._version,
                  'rate_hz': self._rate.rate(), 'ticks': self._rate.count, 'experience_seq': self._seq,
                  'idle_frames': self._idle_frames,
                  'tick_ms_p50': self._tick_ms.p50, 'tick_ms_p99': self._tick_ms.p99,
                  'latency_ms_p50': self._latency_ms.p50, 'latency_ms_p99': self._latency_ms.p99}
        blind_holds = 0
        if self._actor is not None and self._actor.action_mode == 'epsilon_greedy':
            values['epsilon'] = self._actor.epsilon
        if self._actor is not None and self._actor.action_mode == 'held_bandit':
            bandit = self._actor.place_bandit
            blind_holds = bandit.holds_without_velocity
            values.update(bandit_holds=bandit.holds, places_in_window=len(bandit.places.counts),
                          bandit_run_probability=bandit.probabilities()['run'][1],
                          holds_without_velocity=blind_holds)
        if not self._acting:
            return diagnostics.OK, 'paused', values
        if self._rate.rate() == 0.0:
            return diagnostics.WARN, 'no features arriving', values
        if blind_holds >= BLIND_HOLDS:
            return diagnostics.WARN, (f'held_bandit is blind: nothing on measured_velocity for {blind_holds} holds, '
                                      'so no place pays (relay odometry there, or set velocity_parameters)'), values
        return diagnostics.OK, f'v{self._version}, {self._rate.rate():.1f} Hz', values


def main(args: list[str] | None = None) -> None:
    run_node(PolicyNode, args)


if __name__ == '__main__':
    main()

"""osc_bridge_node: a cmd_vel driver for VRChat, speaking its OSC input protocol over UDP.

Only changed inputs are sent. Every input is released on pause (deactivate, or set_enabled
false), on cleanup and shutdown, and when no command arrived within `deadman_timeout`, so
the avatar never keeps walking on its own. A command with a NaN or infinite velocity is
refused: it does not count as a command, so the dead-man timeout still releases what the last
valid one held.
With `reward_parameter` set it also listens to VRChat's OSC output (avatar parameters, UDP
9001) and publishes that parameter's value, times `reward_scale`, on `reward` per message.
With `velocity_parameters` it publishes the avatar's own velocity (VRChat's VelocityZ,
VelocityX and AngularY, latest values held since VRChat sends only changes) as a body-frame
TwistStamped on `measured_velocity` at `measured_velocity_rate`: the odometry twist that
policy_node's place-novelty explorer dead-reckons.
"""
from __future__ import annotations

import time

from geometry_msgs.msg import Twist, TwistStamped
from std_msgs.msg import Float32
from std_srvs.srv import SetBool

from ami_nodes.action_space import Velocity
from ami_nodes.actuation.avatar_parameters import AVATAR_VELOCITY_PARAMETERS, AvatarParameterListener, body_velocity
from ami_nodes.actuation.osc_sender import OscSender
from ami_nodes.actuation.vrchat_osc import InputState, velocity_to_inputs
from ami_nodes.monitoring.rates import RateMeter, RollingStats
from ami_nodes.ros import diagnostics, qos
from ami_nodes.ros.lifecycle import ManagedNode
from ami_nodes.ros.messages import stamp_to_ns
from ami_nodes.ros.params import VELOCITY_PARAMETERS, Param, velocity_limits
from ami_nodes.ros.spin import run_node

PARAMETERS = (
    Param('host', '127.0.0.1', 'OSC host (VRChat or ami_world)'),
    Param('port', 9000, 'OSC UDP port VRChat listens on', 1, 65535),
    Param('mode', 'axes', 'Movement through analogue axes or held buttons',
          choices=('axes', 'buttons')),
    Param('cmd_vel_stamped', True, 'Subscribe to geometry_msgs/TwistStamped (else Twist)'),
    Param('deadman_timeout', 0.5, 'Release every input when no cmd_vel came for this long (s)',
          0.05, 60.0, live=True),
    *VELOCITY_PARAMETERS,
    Param('reward_parameter', '', "Avatar parameter published as `reward` (e.g. TargetTouched); "
          "'' listens to nothing"),
    Param('reward_host', '127.0.0.1', 'Address to receive avatar parameters on'),
    Param('reward_port', 9001, 'UDP port of VRChat OSC output (avatar parameters)', 1, 65535),
    Param('reward_scale', 1.0, 'reward = scale x parameter value (bools are 1/0)', -1000.0, 1000.0),
    Param('velocity_parameters', False, "Publish VRChat's velocity avatar parameters (VelocityZ, "
          'VelocityX, AngularY) as measured_velocity'),
    Param('measured_velocity_rate', 20.0, 'measured_velocity messages per second', 1.0, 1000.0),
)


class OscBridgeNode(ManagedNode):
    """A managed node: deactivate releases every input, and commands are ignored until
    activated again."""

    def __init__(self) -> None:
        super().__init__('osc_bridge_node', PARAMETERS, self._apply)
        self._limits = velocity_limits(self.p)
        self._sender: OscSender | None = None
        self._state = InputState()
        self._enabled = True
        self._last_command = 0.0
        self._released = True
        self._latency_ms = RollingStats()
        self._rate = RateMeter()
        self._reported_error = ''
        self._deadman_timer = None
        self._rewards_published = 0
        self._listener: AvatarParameterListener | None = None
        self._velocity_values: dict[str, float] = {}   # latest AVATAR_VELOCITY_PARAMETERS received

    def build(self) -> None:
        self._sender = OscSender(self.p.host, self.p.port)
        self._state = InputState()
        self.get_logger().info(f'sending VRChat OSC ({self.p.mode}) to '
                               f'{self.p.host}:{self.p.port}')
        self._send(self._state.release_all())

    def wire(self) -> None:
        guard = self.errors.guard
        if self.p.cmd_vel_stamped:
            self.create_subscription(TwistStamped, 'cmd_vel', guard('cmd_vel', self._on_stamped),
                                     qos.STREAM)
        else:
            self.create_subscription(Twist, 'cmd_vel', guard('cmd_vel', self._on_twist),
                                     qos.STREAM)
        self._latency_pub = self.create_lifecycle_publisher(Float32, '~/latency_ms',
                                                            qos.MONITOR)
        self.create_service(SetBool, '~/set_enabled', guard('set_enabled', self._on_set_enabled))
        self._deadman_timer = self.create_timer(self.p.deadman_timeout / 2,
                                                guard('deadman', self._check_deadman))
        if self.p.reward_parameter:
            self._reward_pub = self.create_publisher(Float32, 'reward', qos.STREAM)
            self.get_logger().info(f'publishing avatar parameter {self.p.reward_parameter!r} on reward')
        if self.p.velocity_parameters:
            self._velocity_pub = self.create_publisher(TwistStamped, 'measured_velocity', qos.STREAM)
            self.create_timer(1.0 / self.p.measured_velocity_rate,
                              guard('measured_velocity', self._publish_velocity))
            self.get_logger().info(f'publishing avatar parameters {AVATAR_VELOCITY_PARAMETERS} on measured_velocity')
        if self.p.reward_parameter or self.p.velocity_parameters:
            self._listener = AvatarParameterListener(
                self.p.reward_host, self.p.reward_port,
                guard('avatar_parameters', self._on_avatar_parameter),
                lambda reason: self.errors.report('avatar_parameters', reason))
            self.get_logger().info(f'avatar parameters from udp://{self.p.reward_host}:{self.p.reward_port}')

    def stop(self, why: str) -> None:
        self.release_all(why)

    def save_and_drop(self, final_checkpoint: bool) -> None:
        self.release_all('cleanup')
        self._sender.close()
        self._sender = None

    def _on_avatar_parameter(self, name: str, value: float) -> None:
        if self.p.reward_parameter and name == self.p.reward_parameter:
            self._reward_pub.publish(Float32(data=self.p.reward_scale * value))
            self._rewards_published += 1
        elif self.p.velocity_parameters and name in AVATAR_VELOCITY_PARAMETERS:
            self._velocity_values[name] = value   # a float: one reference store, no lock needed

    def _publish_velocity(self) -> None:
        forward, left, yaw_rate = body_velocity(dict(self._velocity_values))
        msg = TwistStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = 'base_link'
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.angular.z = forward, left, yaw_rate
        self._velocity_pub.publish(msg)

    def _on_stamped(self, msg: TwistStamped) -> None:
        self._command(msg.twist, stamp_to_ns(msg.header.stamp))

    def _on_twist(self, msg: Twist) -> None:
        self._command(msg, None)

    def _command(self, twist: Twist, stamp_ns: int | None) -> None:
        velocity = Velocity(twist.linear.x, twist.linear.y, twist.linear.z, twist.angular.z)
        try:
            wanted = velocity_to_inputs(velocity, self._limits, self.p.mode)
        except ValueError as error:
            self.errors.report('cmd_vel', str(error))
            return
        self._last_command = time.monotonic()
        if not (self.active and self._enabled):
            return
        self._send(self._state.changes(wanted))
        self._released = False
        self._rate.tick()
        if stamp_ns is not None:
            latency = (self.get_clock().now().nanoseconds - stamp_ns) / 1e6
            self._latency_ms.add(latency)
            self._latency_pub.publish(Float32(data=latency))

    def _send(self, messages) -> None:
        sent = self._sender.send(messages)
        self._state.mark_sent(sent)
        if not self._sender.healthy and self._sender.last_error != self._reported_error:
            self._reported_error = self._sender.last_error
            self.get_logger().error(self._sender.last_error)
        elif self._sender.healthy:
            self._reported_error = ''

    def release_all(self, why: str) -> None:
        if self._sender is None:
            return  # not configured: no socket, nothing held
        if not self._released:
            self.get_logger().info(f'releasing every input ({why})')
        self._send(self._state.release_all())
        self._released = True

    def _check_deadman(self) -> None:
        if not self._released and time.monotonic() - self._last_command > self.p.deadman_timeout:
            self.release_all(f'no cmd_vel for {self.p.deadman_timeout:g} s')

    def _apply(self, name: str, value) -> None:
        if name == 'deadman_timeout' and self._deadman_timer is not None:
            # checked twice per timeout, so re-time the check
            self.destroy_timer(self._deadman_timer)
            self._deadman_timer = self.create_timer(
                value / 2, self.errors.guard('deadman', self._check_deadman))
        elif name != 'deadman_timeout':  # a speed
            self._limits = velocity_limits(self.p)
        self.get_logger().info(f'{name} set to {value!r}')

    def _on_set_enabled(self, request: SetBool.Request, response: SetBool.Response):
        self._enabled = request.data
        if not self._enabled:
            self.release_all('paused')
        response.success = True
        response.message = 'acting' if self._enabled else 'paused: every input released'
        return response

    def report(self) -> diagnostics.Report:
        values = {'enabled': self._enabled, 'commands_hz': self._rate.rate(),
                  'datagrams_sent': self._sender.sent, 'send_errors': self._sender.errors,
                  'held_inputs': len(self._state.held),
                  'latency_ms_p50': self._latency_ms.p50, 'latency_ms_p99': self._latency_ms.p99,
                  'last_error': self._sender.last_error}
        if self._listener is not None:
            values.update(parameter_datagrams=self._listener.received,
                          parameter_datagrams_refused=self._listener.refused,
                          rewards_published=self._rewards_published)
        if not self._enabled:
            return diagnostics.OK, 'paused, inputs released', values
        if not self._sender.healthy:
            return diagnostics.ERROR, self._sender.last_error, values
        return diagnostics.OK, f'{self._rate.rate():.1f} commands/s', values

    def close(self) -> None:
        super().close()
        if self._listener is not None:
            self._listener.close()


def main(args: list[str] | None = None) -> None:
    run_node(OscBridgeNode, args)


if __name__ == '__main__':
    main()

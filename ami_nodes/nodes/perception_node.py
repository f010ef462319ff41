"""perception_node: encodes every frame and trains the encoder online (seed 003's act() flow).

Per frame: forward with gradients, auxiliary loss against the previous step (the previous
action comes from the policy's `action` topic, matched by stamp), backward, step, then the
detached features go out with the frame's header. A missing action degrades to the
action-free loss; nothing here ever waits for another node. With the odometry term on
(`loss_odometry` > 0) the node also integrates `measured_velocity` into a dead-reckoned pose
and hands each frame the pose of its moment (none when no velocity came for a while).
"""
from __future__ import annotations

from collections import OrderedDict

from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, UInt8MultiArray

from ami_nodes.monitoring.rates import RateMeter, RollingStats
from ami_nodes.odometry import MAX_VELOCITY_GAP_S, DeadReckoning
from ami_nodes.perception.aux_losses import AuxLossConfig
from ami_nodes.perception.online import FROZEN_TRAIN_EVERY, OnlinePerception, OnlinePerceptionConfig
from ami_nodes.persistence.weights import encode_weights
from ami_nodes.ros import checkpointing, diagnostics, qos
from ami_nodes.ros.lifecycle import ManagedNode
from ami_nodes.ros.messages import (
    ENCODER_MODEL,
    MessageError,
    blob_to_msg,
    features_to_msg,
    image_to_rgb,
    msg_to_action,
    msg_to_body_velocity,
    rgb_to_image,
    stamp_to_ns,
)
from ami_nodes.ros.params import Param, params_of, torch_parameters
from ami_nodes.ros.spin import run_node
from ami_nodes.settings import config_from
from ami_nodes.torch_device import configure_torch

LOSS_TERMS = ('predictive', 'coherence', 'variance', 'covariance', 'contrastive', 'odometry')

PARAMETERS = (
    *torch_parameters('the encoder'),
    *params_of(OnlinePerceptionConfig),
    *params_of(AuxLossConfig),
    Param('train_online', True, 'Train the encoder on the live stream (false: frozen)'),
    Param('budget_fraction', 0.0, 'Automatic K: keep the mean perception step under this '
          'fraction of the frame period (0 disables; switching it on or off needs a restart)',
          0.0, 1.0, live=True),
    Param('frame_rate', 20.0, 'Expected frame rate, for the automatic budget (Hz)', 0.1, 1000.0,
          live=True),
    Param('preview_every', 5, 'Publish the preview image every N frames (0: never)', 0, 100000),
    Param('log_every', 20, 'Write losses to the training log every N frames', 1, 100000),
    Param('encoder_weights_period', 5.0, 'Publish the encoder weights on encoder_weights every N s '
          'while anyone subscribes (learner_node with branching_q encodes its replay with them; '
          '0: never)', 0.0, 3600.0),
    *checkpointing.PARAMETERS,
)
#: How OnlinePerception.state_dict() is split into the checkpoint's folders: models (loadable
#: alone, e.g. by the probe evaluation), trainers; everything else (buffers) goes to data/.
MODEL_KEYS = ('encoder', 'predictor', 'aux_heads', 'ema_encoder', 'objective')
TRAINER_KEYS = ('config', 'optimizer', 'counters', 'budget')


class PerceptionNode(ManagedNode):
    """A managed node: configure builds the encoder and loads the checkpoint, activate
    starts encoding and training on frames, deactivate stops it."""

    def __init__(self) -> None:
        super().__init__('perception_node', PARAMETERS, self._apply, refuse=self._refuse)
        self.core: OnlinePerception | None = None
        self._actions: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        self._previous_stamp: int | None = None
        self._step_ms = RollingStats()
        self._rate = RateMeter()
        self._losses: dict[str, float] = {}
        self._without_action = 0
        self._odometry = DeadReckoning()
        self._velocity_heard_ns: int | None = None   # node clock, when the last velocity came
        self._without_pose = 0
        self._encoder_sent = 0

    def build(self) -> None:
        device = configure_torch(self.p.device, self.p.torch_threads)
        budget_s = self.p.budget_fraction / self.p.frame_rate
        values = vars(self.p)
        core = OnlinePerception(config_from(
            OnlinePerceptionConfig, values,
            train_every=self.p.train_every if self.p.train_online else FROZEN_TRAIN_EVERY,
            budget_s=budget_s if self.p.train_online else 0.0,
            aux=config_from(AuxLossConfig, values)), device=device)
        checkpointing.resume(self, self.p,
                             lambda part: core.load_state_dict(
                                 {**part.trainers['online'], **part.data['memory'],
                                  **{k: part.models.get(k, {}) for k in MODEL_KEYS}}))
        self.core = core
        self._log = checkpointing.training_log(self, self.p.log_dir, self.p.run_name,
                                               self.core.frames)
        self._logged_at = self.core.frames
        self._previous_stamp = None

    def wire(self) -> None:
        checkpointing.CheckpointParticipant(self, self.p.checkpoint_dir, self._snapshot,
                                            self.errors)
        self._features_pub = self.create_lifecycle_publisher(Image, 'features', qos.STREAM)
        self._preview_pub = self.create_lifecycle_publisher(Image, '~/preview', qos.MONITOR)
        self._scalar_pubs = {name: self.create_lifecycle_publisher(Float32, f'~/{name}',
                                                                   qos.MONITOR)
                             for name in ('aux_loss', 'step_time_ms', 'train_every',
                                          'feature_mean', 'feature_std', 'effective_rank',
                                          *(f'loss/{t}' for t in LOSS_TERMS))}
        # The action first: when both are waiting, the executor serves them in creation
        # order, so frame t finds the action taken on frame t-1.
        guard = self.errors.guard
        self.create_subscription(JointState, 'action', guard('action', self._on_action),
                                 qos.STREAM)
        self.create_subscription(Image, 'image_raw', guard('image_raw', self._on_image),
                                 qos.LATEST)
        if self.p.loss_odometry > 0:
            self.create_subscription(TwistStamped, 'measured_velocity',
                                     guard('measured_velocity', self._on_measured_velocity), qos.STREAM)
        self.create_timer(1.0, guard('feature_stats', self._publish_feature_stats))
        self._encoder_pub = self.create_lifecycle_publisher(UInt8MultiArray, 'encoder_weights', qos.LATCHED)
        if self.p.encoder_weights_period > 0:
            self.create_timer(self.p.encoder_weights_period,
                              guard('encoder_weights', self._publish_encoder_weights))

    def save_and_drop(self, final_checkpoint: bool) -> None:
        """The learner's checkpoints hold this node's part (it cannot make one alone), so
        cleanup closes the training log and drops the encoder."""
        self._log.close()
        self.core = None

    def _refuse(self, values) -> str | None:
        if (values.budget_fraction > 0) != (self.p.budget_fraction > 0):
            return ('budget_fraction switches automatic train_every on or off only at start: '
                    'restart the node with the new value')
        if not self.p.train_online and values.train_every != self.p.train_every:
            return 'train_online is false (the encoder is frozen): train_every has no effect'
        return None

    def _apply(self, name: str, value) -> None:
        """A live setting, between frames (the executor runs this and _on_image in turn)."""
        if self.core is None:
            pass  # configure builds the core from the new value
        elif name in ('budget_fraction', 'frame_rate'):
            self.core.update_setting('budget_s', self.p.budget_fraction / self.p.frame_rate)
        else:
            self.core.update_setting(name, value)
        self.get_logger().info(f'{name} set to {value!r}')

    def _on_action(self, msg: JointState) -> None:
        try:
            self._actions[stamp_to_ns(msg.header.stamp)] = msg_to_action(msg)
        except MessageError as error:
            self.errors.report('action', str(error))
        while len(self._actions) > 64:
            self._actions.popitem(last=False)

    def _on_measured_velocity(self, msg: TwistStamped) -> None:
        """Odometry for the odometry term (osc_bridge_node's, or a robot base's twist)."""
        try:
            values = msg_to_body_velocity(msg)
        except MessageError as error:
            self.errors.report('measured_velocity', str(error))
            return
        self._odometry.observe(*values, stamp_to_ns(msg.header.stamp))
        self._velocity_heard_ns = self.get_clock().now().nanoseconds

    def _current_pose(self) -> tuple[float, float, float] | None:
        """The dead-reckoned pose, when the odometry term is on and a velocity came lately."""
        if self.p.loss_odometry <= 0:
            return None
        heard = self._velocity_heard_ns
        if heard is None or self.get_clock().now().nanoseconds - heard > MAX_VELOCITY_GAP_S * 1e9:
            self._without_pose += 1
            return None
        return self._odometry.pose

    def _on_image(self, msg: Image) -> None:
        if not self.active:
            return
        try:
            rgb = image_to_rgb(msg, self.p.image_size, self.p.image_size)
        except MessageError as error:
            self.errors.report('image_raw', str(error))
            return
        stamp = stamp_to_ns(msg.header.stamp)
        prev_action = self._actions.get(self._previous_stamp) if self._previous_stamp else None
        if prev_action is None and self._previous_stamp is not None:
            self._without_action += 1
        self._previous_stamp = stamp
        step = self.core.step(rgb, prev_action, on_features=lambda features: (
            self._features_pub.publish(features_to_msg(features, msg.header))), pose=self._current_pose())
        self._step_ms.add(step.step_time_s * 1000)
        self._rate.tick()
        self._losses = step.losses
        self._publish_scalar('step_time_ms', step.step_time_s * 1000)
        if self.p.train_online:   # frozen, K is a 'never' sentinel that no plot should draw
            self._publish_scalar('train_every', step.train_every)
        if 'total' in step.losses:
            self._publish_scalar('aux_loss', step.losses['total'])
            for term in LOSS_TERMS:
                if term in step.losses:
                    self._publish_scalar(f'loss/{term}', step.losses[term])
        if self.p.preview_every and self.core.frames % self.p.preview_every == 0:
            preview = self.core.preview_image(rgb)
            self._preview_pub.publish(rgb_to_image(preview, msg.header))
            if self.core.frames % (self.p.preview_every * 600) == 0:
                self._log.image('perception/preview', preview, self.core.frames)
        if step.trained and self.core.frames - self._logged_at >= self.p.log_every:
            self._logged_at = self.core.frames
            self._log.scalars({f'perception/{k}': v for k, v in step.losses.items()}
                              | {'perception/step_time_ms': step.step_time_s * 1000,
                                 'perception/train_every': step.train_every,
                                 'perception/learning_rate': self.core.current_learning_rate}, self.core.frames)

    def _publish_scalar(self, name: str, value: float) -> None:
        self._scalar_pubs[name].publish(Float32(data=float(value)))

    def _publish_feature_stats(self) -> None:
        if not self.active:
            return
        stats = self.core.feature_stats()
        self._publish_scalar('feature_mean', stats['mean'])
        self._publish_scalar('feature_std', stats['std'])
        self._publish_scalar('effective_rank', stats['effective_rank'])
        self._log.scalars({'perception/feature_std': stats['std'],
                           'perception/effective_rank': stats['effective_rank']}, self.core.frames)

    def _publish_encoder_weights(self) -> None:
        """The published encoder's weights, versioned by training steps, when someone listens.
        Sent again each period even when unchanged: Fast DDS can miss a transient-local sample
        for a late joiner, and the receiver ignores a blob it already has (its checksum)."""
        if not self.active or self._encoder_pub.get_subscription_count() == 0:
            return
        blob = encode_weights(self.core.encoder_state(), self.core.train_steps, ENCODER_MODEL)
        self._encoder_pub.publish(blob_to_msg(blob, f'{ENCODER_MODEL} v{self.core.train_steps}'))
        self._encoder_sent += 1

    def report(self) -> diagnostics.Report:
        stats = self.core.feature_stats()
        values = {'rate_hz': self._rate.rate(), 'frames': self.core.frames,
                  'train_steps': self.core.train_steps, 'train_every': self._train_every_shown(),
                  'aux_loss': self._losses.get('total', float('nan')),
                  'step_ms_p50': self._step_ms.p50, 'step_ms_p99': self._step_ms.p99,
                  'effective_rank': stats['effective_rank'],
                  'frames_without_action': self._without_action,
                  'encoder_weights_sent': self._encoder_sent}
        if self.p.loss_odometry > 0:
            values['frames_without_pose'] = self._without_pose
        if self._rate.rate() == 0.0:
            return diagnostics.WARN, f'no frames arriving {self.errors.last}'.strip(), values
        return diagnostics.OK, f'{self._rate.rate():.1f} Hz, K={self._train_every_shown()}', values

    def _train_every_shown(self) -> int | str:
        """K as people read it: 'off' for a frozen encoder rather than its 'never' sentinel."""
        return self.core.train_every if self.p.train_online else 'off'


    def _snapshot(self) -> checkpointing.Part | None:
        if self.core is None:
            return None
        state = self.core.state_dict()  # a deep copy: later training cannot change it
        return {'models': {k: state[k] for k in MODEL_KEYS if state[k]},
                'trainers': {'online': {k: state[k] for k in TRAINER_KEYS}},
                'data': {'memory': {k: v for k, v in state.items()
                                    if k not in MODEL_KEYS + TRAINER_KEYS}},
                'params': checkpointing.node_params(self)}


def main(args: list[str] | None = None) -> None:
    run_node(PerceptionNode, args)


if __name__ == '__main__':
    main()

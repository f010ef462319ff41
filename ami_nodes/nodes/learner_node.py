"""learner_node: learns from the policy's experience and ships versioned policy weights.

Two algorithms (`algorithm`). `ppo`: curiosity-driven PPO; subscriptions only append to a
bounded buffer, a training thread pops ready rollouts, trains forward dynamics (intrinsic
reward = its normalised prediction error) and PPO. `branching_q`: factored Q-learning from a
replay of decisions (learning/decision_stream_q.py) for a task reward; each experience message
is one decision, paired here with the camera frame of its stamp (`image_raw`), and the replay is
encoded with perception_node's newest encoder (`encoder_weights`). Either way the new policy
weights go out on a reliable, transient-local topic. When a policy reports an older version
than the newest for a while (a late joiner, a lost sample), the newest is re-published.

A fleet's learner reads several experience topics (one per robot, `experience_topics`): each
is its own source in the buffer, so gaps, restarts and policy lag are counted per robot, and
one policy, trained on all of them, is shipped to all (`ppo` only: each robot's perception
trains its own encoder, and one Q network cannot read them all).
"""
from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict, deque

import numpy as np
import torch
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, UInt8MultiArray
from std_srvs.srv import SetBool, Trigger

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.actor import ALGORITHMS
from ami_nodes.learning.branching_q import BranchingQConfig
from ami_nodes.learning.decision_stream_q import DecisionStreamConfig, DecisionStreamQ
from ami_nodes.learning.experience import ExperienceBuffer, Transition
from ami_nodes.learning.learner import CuriosityPPOLearner, LearnerConfig
from ami_nodes.learning.ppo import PPOConfig
from ami_nodes.monitoring.rates import RateMeter, RollingStats
from ami_nodes.persistence.weights import WeightsError, decode_weights, encode_weights
from ami_nodes.ros import checkpointing, diagnostics, qos
from ami_nodes.ros.errors import ConfigureError
from ami_nodes.ros.lifecycle import ManagedNode
from ami_nodes.ros.messages import (
    ENCODER_MODEL,
    EPSILON_KEY,
    POLICY_MODEL,
    Q_POLICY_MODEL,
    MessageError,
    blob_to_msg,
    image_to_rgb,
    msg_to_blob,
    msg_to_experience,
    msg_to_reward,
    stamp_to_ns,
)
from ami_nodes.ros.params import Param, params_of, torch_parameters
from ami_nodes.ros.spin import run_node
from ami_nodes.settings import config_from
from ami_nodes.torch_device import configure_torch

PARAMETERS = (
    *torch_parameters('training (weights are shipped as CPU tensors either way)'),
    Param('algorithm', 'ppo', "What to learn and ship: 'ppo' (curiosity-driven PPO) or "
          "'branching_q' (Q-learning of the task reward from a replay of decisions; policy_node "
          'algorithm must match)', choices=ALGORITHMS),
    Param('feature_dim', 64, 'Size of the feature vector in the experience', 1, 65536),
    Param('experience_topics', ['experience'], 'Experience topics to learn from: one per robot '
          'of a fleet (e.g. robot_0/experience), relative to this node\'s namespace'),
    Param('rollout_length', 128, 'Consecutive steps per PPO rollout', 2, 100000),
    *params_of(PPOConfig),
    *params_of(LearnerConfig),
    *params_of(BranchingQConfig),
    *params_of(DecisionStreamConfig),
    Param('republish_after', 2.0, 'Re-publish the newest weights when the policy lags this '
          'long (s)', 0.1, 3600.0),
    Param('seed', 1, 'Seed of the learner initial weights', 0, 2**31 - 1),
    Param('checkpoint_period', 300.0, 'Take a checkpoint every N seconds (0: only on request)',
          0.0, 1e9),
    Param('checkpoint_keep', 5, 'Keep the newest N checkpoints', 1, 100000),
    Param('checkpoint_parts', ['learner_node', 'perception_node', 'policy_node'],
          'Nodes whose parts make a checkpoint whole; one missing means no checkpoint'),
    Param('checkpoint_timeout', 15.0, 'Seconds to wait for every node part of a checkpoint',
          0.1, 3600.0),
    *checkpointing.PARAMETERS,
)


#: Experience stamped further ahead of this node's clock is refused (clocks of one machine or
#: a synchronised network differ by far less).
MAX_STAMP_AHEAD_S = 60.0
#: Experience from a policy version this far above ours is refused: a restart from a checkpoint
#: explains a few hundred versions at most, and a made-up huge one would renumber our weights
#: (continue_above) past what float64 experience values can carry, stopping learning for good.
MAX_VERSION_AHEAD = 100_000

#: Training statistics published for rqt_plot and written to the training log.
LOGGED_STATS = ('intrinsic_reward_mean', 'prediction_error_mean', 'forward_loss', 'policy_loss',
                'value_loss', 'entropy', 'approx_kl', 'clip_fraction', 'explained_variance',
                'lag_mean', 'lag_max', 'samples_dropped_lag', 'version')
#: branching_q's statistics, published and logged at each shipped version.
Q_LOGGED_STATS = ('q_loss', 'epsilon', 'decisions', 'updates', 'replay_size', 'version')
#: The live settings each algorithm's core takes; the other's are kept for its next configure.
PPO_SETTINGS = frozenset(p.name for p in (*params_of(PPOConfig), *params_of(LearnerConfig)))
Q_SETTINGS = frozenset(p.name for p in (*params_of(BranchingQConfig), *params_of(DecisionStreamConfig))) | {
    'extrinsic_weight'}
#: branching_q: camera frames kept for pairing with the experience of the same stamp (2 s at 20 Hz).
FRAMES_KEPT = 40


class ExperienceSource:
    """What the learner knows of one robot's experience stream."""

    def __init__(self) -> None:
        self.rate = RateMeter()
        self.lag = RollingStats(500)  # learner version minus the acting version, on arrival
        self.policy_version: int | None = None


class LearnerNode(ManagedNode):
    """A managed node: configure builds the learner and loads the checkpoint, activate starts
    learning, deactivate stops it, cleanup and shutdown take a final checkpoint."""

    def __init__(self) -> None:
        super().__init__('learner_node', PARAMETERS, self._apply)
        self.core: CuriosityPPOLearner | None = None
        self._train_lock = threading.Lock()
        self._updates = 0
        self._learning = True
        self._reward = 0.0            # summed `reward` messages since the last experience
        self._reward_lock = threading.Lock()
        self._stats: dict = {}
        self._update_ms = RollingStats(50)
        self._sources = {topic: ExperienceSource() for topic in self.p.experience_topics}
        self._policy_behind_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._publish_pending = True
        self.checkpoints: checkpointing.CheckpointCoordinator | None = None
        # branching_q: frames by stamp, decisions and encoder blobs for the training thread
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._decisions: deque[tuple[int, np.ndarray | None, tuple[int, ...], float]] = deque()
        self._encoder_blob: bytes | None = None
        self._wake = threading.Event()

    @property
    def _q(self) -> bool:
        return self.p.algorithm == 'branching_q'

    def build(self) -> None:
        parts = checkpointing.check_parts(list(self.p.checkpoint_parts))
        try:
            device = configure_torch(self.p.device, self.p.torch_threads)
        except ValueError as error:  # cuda asked for and absent: say so, do not guess
            raise ConfigureError(f'cannot train: {error}') from error
        self.get_logger().info(f'training on {device}')
        torch.manual_seed(self.p.seed)
        values = vars(self.p)
        if self._q:
            if len(self.p.experience_topics) != 1:
                raise ConfigureError(f'algorithm branching_q learns from one robot, not '
                                     f'{len(self.p.experience_topics)} (experience_topics): each '
                                     "robot's perception trains its own encoder; use algorithm ppo for a fleet")
            self.core = DecisionStreamQ(
                self.p.feature_dim, ACTION_DIMS, config_from(BranchingQConfig, values),
                config_from(DecisionStreamConfig, values), self.p.extrinsic_weight, self.p.seed, device)
        else:
            self.core = CuriosityPPOLearner(self.p.feature_dim, ACTION_DIMS, config_from(
                LearnerConfig, values, ppo=config_from(PPOConfig, values)), device=device)
        self.buffer = ExperienceBuffer(rollout_length=self.p.rollout_length)
        self._decisions.clear()
        self._frames.clear()
        self._updates, self._stats = 0, {}
        checkpointing.resume(self, self.p, self._restore)
        self._log = checkpointing.training_log(self, self.p.log_dir, self.p.run_name,
                                               self._updates)
        if self.checkpoints is None:
            self.checkpoints = checkpointing.CheckpointCoordinator(
                self, self.p.checkpoint_dir, self.p.checkpoint_keep, self.p.checkpoint_timeout,
                parts, self._snapshot, self.errors, self.p.run_name)
        # The first weights wait for the policy's version (its first experience): after a
        # restart, fresh or from a checkpoint, the policy may act with a newer version than
        # ours, and the versions we ship must only ever rise.
        self._publish_pending = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._train_loop, name='training', daemon=True)
        self._thread.start()

    def wire(self) -> None:
        self._weights_pub = self.create_lifecycle_publisher(UInt8MultiArray, 'policy_weights',
                                                            qos.LATCHED)
        self._scalar_pubs: dict[str, object] = {}
        guard = self.errors.guard
        if self._q:   # frames first: when both wait, the executor serves them in creation order
            image_topic = self._image_topic()
            self.create_subscription(Image, image_topic, guard(image_topic, self._on_image), qos.REPLAY_FRAMES)
            self.create_subscription(UInt8MultiArray, 'encoder_weights',
                                     guard('encoder_weights', self._on_encoder_weights), qos.LATCHED)
        for topic in self._sources:
            self.create_subscription(JointState, topic, guard(
                topic, lambda msg, topic=topic: self._on_experience(msg, topic)), qos.EXPERIENCE)
        self.create_subscription(Float32, 'reward', guard('reward', self._on_reward), qos.STREAM)
        self.create_service(SetBool, '~/set_learning', guard('set_learning', self._on_set_learning))
        self.create_service(Trigger, '~/save', guard('save', self._on_save))
        if self.p.checkpoint_period > 0:
            self.create_timer(self.p.checkpoint_period,
                              guard('checkpoint_period', self._periodic_checkpoint))
        self.create_timer(0.5, guard('policy_lag', self._check_policy_lag))

    def _image_topic(self) -> str:
        """The camera topic beside the experience topic (`robot_0/experience`: `robot_0/image_raw`)."""
        topic = self.p.experience_topics[0]
        return topic.rsplit('/', 1)[0] + '/image_raw' if '/' in topic else 'image_raw'

    def save_and_drop(self, final_checkpoint: bool) -> None:
        """A final checkpoint if asked (its snapshot is taken now; the parts of the other
        nodes are gathered on a worker thread while this node spins on), then the training
        thread stops and the model goes."""
        if final_checkpoint:
            name = self.checkpoints.save_async()
            self.get_logger().info(f'final checkpoint {name} being saved' if name else
                                   'a checkpoint is being saved already: no final one')
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30.0)
        self._log.close()
        self.core = None

    def _periodic_checkpoint(self) -> None:
        if self.configured:
            self.checkpoints.save_async()

    # --- subscriptions: append only --------------------------------------------------
    def _on_experience(self, msg: JointState, topic: str) -> None:
        if not self.active:
            return
        try:
            exp = msg_to_experience(msg, self.p.feature_dim)
        except MessageError as error:
            self.errors.report('experience', str(error))
            return
        ahead_s = (exp.stamp_ns - self.get_clock().now().nanoseconds) / 1e9
        if ahead_s > MAX_STAMP_AHEAD_S:
            # A stamp from the future would make every real sample after it look late.
            self.errors.report('experience', f'stamp is {ahead_s:.0f} s ahead of this clock')
            return
        if exp.policy_version - self.core.version > MAX_VERSION_AHEAD:
            self.errors.report('experience', f'policy_version {exp.policy_version} is more '
                                f'than {MAX_VERSION_AHEAD} above mine (v{self.core.version})')
            return
        source = self._sources[topic]
        source.rate.tick()
        source.policy_version = exp.policy_version
        source.lag.add(self.core.version - exp.policy_version)
        with self._reward_lock:
            reward, self._reward = self._reward, 0.0
        if self._q:
            observation = self._frames.get(exp.stamp_ns) if self.core.frames else exp.features
            self._decisions.append((exp.seq, observation, exp.action, reward))
            self._wake.set()
            return
        self.buffer.add(Transition(
            seq=exp.seq, stamp_ns=exp.stamp_ns, features=exp.features,
            action=list(exp.action), log_prob=exp.log_prob, value=exp.value,
            policy_version=exp.policy_version, extrinsic_reward=reward), source=topic)

    def _on_image(self, msg: Image) -> None:
        """branching_q: keep the newest frames by stamp, for the decisions taken on them."""
        if not self.active:
            return
        try:
            frame = image_to_rgb(msg)
        except MessageError as error:
            self.errors.report('image_raw', str(error))
            return
        shape = next(iter(self._frames.values())).shape if self._frames else frame.shape
        if frame.shape != shape:
            self.errors.report('image_raw', f'frame is {frame.shape[1]}x{frame.shape[0]}, the ones before '
                               f'{shape[1]}x{shape[0]}: one camera size per run')
            return
        self._frames[stamp_to_ns(msg.header.stamp)] = frame
        while len(self._frames) > FRAMES_KEPT:
            self._frames.popitem(last=False)

    def _on_encoder_weights(self, msg: UInt8MultiArray) -> None:
        """branching_q: the newest encoder blob, decoded on the training thread."""
        self._encoder_blob = msg_to_blob(msg)
        self._wake.set()

    def _on_reward(self, msg: Float32) -> None:
        """Each message is a reward event (a touch), credited once, to the next experience."""
        try:
            value = msg_to_reward(msg)
        except MessageError as error:
            self.errors.report('reward', str(error))
            return
        with self._reward_lock:
            self._reward += value

    # --- training thread --------------------------------------------------------------
    def _train_loop(self) -> None:
        train = self.errors.guard('training', self._train_q_once if self._q else self._train_once)
        while not self._stop.is_set():
            train()

    def _train_q_once(self) -> None:
        """branching_q: take in what arrived, then pay the owed updates one at a time (each
        under the lock, so a checkpoint or the lag check waits for one update at most),
        shipping each version that comes due."""
        self._wake.wait(timeout=0.2)
        self._wake.clear()
        while not self._stop.is_set():
            with self._train_lock:
                self._take_in()
                if not (self.active and self._learning and self.core.owes()):
                    return
                started = time.perf_counter()
                due = self.core.train()
                self._updates += 1
            self._update_ms.add((time.perf_counter() - started) * 1000)
            if due:
                self._stats = self.core.stats()
                self._publish_weights()
                scalars = {key: float(self._stats[key]) for key in Q_LOGGED_STATS}
                for key, value in scalars.items():
                    self._publish_scalar(key, value)
                self._log.scalars({f'learner/{k}': v for k, v in scalars.items()}, self._updates)

    def _take_in(self) -> None:
        """branching_q, under the training lock: the newest encoder, then the decisions that came
        (while paused they are dropped, and the chain breaks there)."""
        blob, self._encoder_blob = self._encoder_blob, None
        if blob is not None and self.core.frames:
            try:
                packet = decode_weights(blob, expected=self.core.encoder_spec(), model=ENCODER_MODEL)
            except WeightsError as error:
                self.errors.report('encoder_weights', f'rejected, keeping the encoder I have: {error}')
            else:
                if packet.metadata['sha256'] != self.core.encoder_checksum:
                    self.core.set_encoder(packet.tensors, packet.metadata['sha256'])
        while self._decisions:
            decision = self._decisions.popleft()
            if self.active and self._learning:
                self.core.add(*decision)

    def _train_once(self) -> None:
        """Train on the next ready rollout, if any (waits up to 0.2 s for one)."""
        rollout = self.buffer.pop(timeout=0.2)
        if rollout is None or not (self.active and self._learning):
            return
        started = time.perf_counter()
        with self._train_lock:
            self.core.add(rollout)
            stats = self.core.step()
            if stats is None or not stats['updated']:
                return
            self._updates += 1
        self._update_ms.add((time.perf_counter() - started) * 1000)
        self._stats = stats
        self._publish_weights()
        scalars = {key: float(stats[key]) for key in LOGGED_STATS if key in stats}
        scalars['version'] = float(self.core.version)  # stats hold the one trained from
        for key, value in scalars.items():
            self._publish_scalar(key, value)
        self._log.scalars({f'learner/{k}': v for k, v in scalars.items()}, self._updates)

    def _publish_weights(self) -> None:
        model = Q_POLICY_MODEL if self._q else POLICY_MODEL
        extra = {EPSILON_KEY: repr(self.core.epsilon())} if self._q else None
        blob = encode_weights(self.core.policy_state_dict(), self.core.version, model, extra)
        self._weights_pub.publish(blob_to_msg(blob, f'{model} v{self.core.version}'))
        self._publish_scalar('version', self.core.version)

    def _publish_scalar(self, name: str, value: float) -> None:
        if name not in self._scalar_pubs:
            self._scalar_pubs[name] = self.create_publisher(Float32, f'~/{name}', qos.MONITOR)
        self._scalar_pubs[name].publish(Float32(data=float(value)))

    def _check_policy_lag(self) -> None:
        """Re-publish the newest weights if a policy keeps acting with an older version;
        renumber ours if one acts with a newer one (we restarted from a checkpoint). A robot
        whose experience stopped (stopped, or gone) is left out: its version is stale."""
        seen = [s.policy_version for s in self._sources.values()
                if s.policy_version is not None and s.rate.rate() > 0.0]
        if not seen or not self.active:
            return
        if max(seen) > self.core.version:
            with self._train_lock:
                restored = self.core.version
                self.core.continue_above(max(seen))
            self.get_logger().warning(
                f'a policy acts with v{max(seen)}, newer than my v{restored} (restored from a '
                f'checkpoint): shipping my weights as v{self.core.version}; what was learned '
                'after that checkpoint is lost')
            self._publish_pending = True
        if self._publish_pending:
            self._publish_pending = False
            self._publish_weights()
            return
        if min(seen) < self.core.version:
            now = time.monotonic()
            if self._policy_behind_since is None:
                self._policy_behind_since = now
            elif now - self._policy_behind_since > self.p.republish_after:
                self.get_logger().warning(f'a policy still acts with v{min(seen)}; '
                                       f're-publishing v{self.core.version}')
                self._publish_weights()
                self._policy_behind_since = now
        else:
            self._policy_behind_since = None

    def _restore(self, part) -> None:
        if self._q:
            if 'branching_q' not in part.trainers:
                raise KeyError('the checkpoint holds no branching_q learner (it was written with '
                               'algorithm ppo): resume with that algorithm or start fresh')
            state = part.trainers['branching_q']
            state['q']['replay'] = part.data['replay']   # saved apart: data/, as every node's buffers
            self.core.load_state_dict(state)
            self._updates = int(part.interaction['learner']['updates'])
            return
        if 'learner' not in part.trainers:
            raise KeyError('the checkpoint holds no PPO learner (it was written with algorithm '
                           'branching_q): resume with that algorithm or start fresh')
        self.core.load_state_dict(part.trainers['learner'])
        self.buffer.load_state_dict(part.data['experience'],
                                    legacy_source=self.p.experience_topics[0])
        self._updates = int(part.interaction['learner']['updates'])

    def _snapshot(self) -> checkpointing.Part:
        if self._q:
            with self._train_lock:
                state = self.core.state_dict()   # a copy: training goes on after the lock
                replay = state['q'].pop('replay')
                return {'models': {'branching_q': self.core.policy_state_dict()},
                        'trainers': {'branching_q': state}, 'data': {'replay': replay},
                        'interaction': {'learner': {'updates': self._updates, 'version': self.core.version}},
                        'params': checkpointing.node_params(self)}
        with self._train_lock:
            return {'models': {'actor_critic': self.core.policy_state_dict(),
                               'forward_dynamics': copy.deepcopy(
                                   self.core.curiosity.model.state_dict())},
                    'trainers': {'learner': copy.deepcopy(self.core.state_dict())},
                    'data': {'experience': copy.deepcopy(self.buffer.state_dict())},
                    'interaction': {'learner': {'updates': self._updates,
                                                'version': self.core.version}},
                    'params': checkpointing.node_params(self)}

    def _on_save(self, request: Trigger.Request, response: Trigger.Response):
        if not self.configured:
            response.success = False
            response.message = f'not configured ({self.state_label()}): nothing to save'
            return response
        name = self.checkpoints.save_async()
        response.success = bool(name)
        response.message = (f'saving checkpoint {name} in {self.p.checkpoint_dir}' if name
                            else checkpointing.SAVE_BUSY)
        return response

    def _apply(self, name: str, value) -> None:
        """A live setting: the training thread reads it at its next update (configure builds
        the learner from it when there is none). Settings of the other algorithm are kept for
        its next configure."""
        if self.core is not None and name in (Q_SETTINGS if self._q else PPO_SETTINGS):
            with self._train_lock:
                self.core.update_setting(name, value)
        self.get_logger().info(f'{name} set to {value!r}')

    def _on_set_learning(self, request: SetBool.Request, response: SetBool.Response):
        self._learning = request.data
        response.success = True
        response.message = 'learning' if self._learning else 'learning paused'
        return response

    def report(self) -> diagnostics.Report:
        if self._q:
            return self._q_report()
        s = self._stats
        buffer = self.buffer.stats()
        seen = [s.policy_version for s in self._sources.values() if s.policy_version is not None]
        experience_hz = sum(s.rate.rate() for s in self._sources.values())
        values = {'learning': self._learning, 'version': self.core.version,
                  'updates': self._updates, 'device': self.core.device.type,
                  'samples_trained': self.core.trainer.samples_trained,
                  'policy_version_seen': min(seen) if seen else None,
                  'experience_hz': experience_hz,
                  'intrinsic_reward': s.get('prediction_error_mean', float('nan')),
                  'forward_loss': s.get('forward_loss', float('nan')),
                  'policy_loss': s.get('policy_loss', float('nan')),
                  'entropy': s.get('entropy', float('nan')),
                  'lag_mean': s.get('lag_mean', float('nan')),
                  'lag_max': s.get('lag_max', float('nan')),
                  'lag_histogram': s.get('lag_histogram', ''),
                  'update_ms_p50': self._update_ms.p50,
                  'buffer_ready': buffer['ready'], 'gaps': buffer['gaps'],
                  'late_dropped': buffer['late_dropped'],
                  'last_checkpoint': self.checkpoints.last,
                  'checkpoint_error': self.checkpoints.last_error}
        values.update(self._source_values())
        if not self._learning:
            return diagnostics.OK, 'learning paused', values
        if experience_hz == 0.0:
            return diagnostics.WARN, 'no experience arriving', values
        return diagnostics.OK, f'v{self.core.version}, {self._updates} updates', values

    def _q_report(self) -> diagnostics.Report:
        stats = self.core.stats()
        source = next(iter(self._sources.values()))
        values = {'learning': self._learning, 'algorithm': 'branching_q', 'version': self.core.version,
                  'updates': self._updates, 'device': self.core.device.type,
                  'policy_version_seen': source.policy_version, 'experience_hz': source.rate.rate(),
                  'update_ms_p50': self._update_ms.p50, 'replay': self.p.q_replay,
                  'encoder_checksum': self.core.encoder_checksum[:12],
                  'last_checkpoint': self.checkpoints.last, 'checkpoint_error': self.checkpoints.last_error,
                  **stats}
        if not self._learning:
            return diagnostics.OK, 'learning paused', values
        if source.rate.rate() == 0.0:
            return diagnostics.WARN, 'no experience arriving', values
        if self.core.frames and not self.core.encoder_checksum:
            return diagnostics.WARN, ('no encoder weights yet: nothing trains (perception_node publishes them '
                                      'on encoder_weights every encoder_weights_period s; is it 0?)'), values
        return diagnostics.OK, f'v{self.core.version}, {self._updates} updates, epsilon {stats["epsilon"]:.2f}', values

    def _source_values(self) -> dict[str, object]:
        """Each robot's own numbers, keyed `robot_0/experience_hz` etc. (topic's namespace)."""
        counters = self.buffer.source_stats()
        values: dict[str, object] = {}
        for topic, source in self._sources.items():
            label = topic.rsplit('/', 1)[0] if '/' in topic else topic
            counted = counters.get(topic, {})
            values.update({f'{label}/experience_hz': source.rate.rate(),
                           f'{label}/accepted': counted.get('accepted', 0),
                           f'{label}/gaps': counted.get('gaps', 0),
                           f'{label}/restarts': counted.get('restarts', 0),
                           f'{label}/policy_version': source.policy_version,
                           f'{label}/lag_mean': source.lag.mean,
                           f'{label}/lag_p99': source.lag.p99})
        return values


def main(args: list[str] | None = None) -> None:
    run_node(LearnerNode, args)


if __name__ == '__main__':
    main()

"""Checkpoints across processes: the learner coordinates, every torch node writes its part.

Protocol (standard types only): the coordinator reserves a name and publishes it on
`checkpoint/request` (std_msgs/String); each participant snapshots its state in its own
executor thread (consistent with its hot path), writes its part on a worker thread and answers
on `checkpoint/done` (std_msgs/String, JSON). The coordinator finalizes the checkpoint when
every participant that was listening has answered, or aborts it, so a checkpoint in the root
is always whole (ami_nodes.persistence.checkpoint). Anyone can publish on these topics, so a
request must name a checkpoint the coordinator began, and a reply must be a well-formed JSON
object from an expected part; anything else is refused and counted (docs/checkpoints.md).

The topics are relative, so systems under different namespaces keep their checkpoints apart.
A fleet's robots remap them into the fleet's namespace; a node's part is named by its path
relative to the namespace where the request topic lives (`robot_0-policy_node`).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rclpy.node import Node
from std_msgs.msg import String

from ami_nodes import system
from ami_nodes.monitoring.training_log import TrainingLog
from ami_nodes.persistence import CheckpointStore, NodePart, PersistenceError, latest_checkpoint, load_part
from ami_nodes.persistence.checkpoint import check_generated_name
from ami_nodes.persistence.part import check_name
from ami_nodes.ros import qos
from ami_nodes.ros.errors import ConfigureError, InputErrors
from ami_nodes.ros.messages import MessageError
from ami_nodes.ros.params import Param

REQUEST_TOPIC = 'checkpoint/request'
DONE_TOPIC = 'checkpoint/done'
#: The save service's answer while a checkpoint is being written (asking later takes a new one).
SAVE_BUSY = 'a checkpoint is being saved already'

PARAMETERS = (
    Param('checkpoint_dir', 'checkpoints', 'Folder of checkpoints (one sub-folder each)'),
    Param('checkpoint', '', "Resume from this checkpoint folder, or 'latest' (empty: fresh)"),
    Param('log_dir', 'runs', 'Folder of TensorBoard training logs (empty: no training log)'),
    Param('run_name', '', 'Training-log run folder name (empty: this start time)'),
)

#: What a node hands to CheckpointStore.write_part: models, trainers, data, interaction, params.
Part = dict[str, Any]
#: A reply longer than this is not one a participant wrote (theirs are a few hundred bytes).
MAX_REPLY_BYTES = 65536


def make_reply(name: str, node: str, error: str = '') -> String:
    """A participant's answer on DONE_TOPIC: its part of `name` is written (or why not)."""
    return String(data=json.dumps({'name': name, 'node': node, 'ok': not error,
                                   'error': error}))


def parse_reply(text: str) -> dict[str, Any]:
    """A reply from DONE_TOPIC as {name, node, ok, error}, every field checked.

    Anything else is a MessageError: the topic is open to every peer on the network.
    """
    if len(text) > MAX_REPLY_BYTES:
        raise MessageError(f'checkpoint reply of {len(text)} characters, at most '
                           f'{MAX_REPLY_BYTES} expected')
    try:
        reply = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise MessageError(f'checkpoint reply is not JSON: {error}') from None
    if not isinstance(reply, dict):
        raise MessageError(f'checkpoint reply is a JSON {type(reply).__name__}, expected an '
                           'object {name, node, ok, error}')
    types = {'name': str, 'node': str, 'ok': bool, 'error': str}
    wrong = [key for key, kind in types.items() if not isinstance(reply.get(key), kind)]
    if wrong:
        raise MessageError(f'checkpoint reply fields {wrong} are missing or of the wrong type; '
                           f'expected {{name: str, node: str, ok: bool, error: str}}')
    try:
        check_generated_name(reply['name'])
        check_name(reply['node'], 'node name')
    except ValueError as error:
        raise MessageError(f'checkpoint reply: {error}') from None
    return {key: reply[key] for key in types}


def node_params(node: Node) -> dict[str, Any]:
    """Every parameter's current value, saved with the part so a run can be inspected later."""
    return {name: p.value for name, p in node.get_parameters_by_prefix('').items()}


def part_name(node: Node) -> str:
    """This node's part name in checkpoints: its path below the checkpoint protocol's namespace."""
    request = node.resolve_topic_name(REQUEST_TOPIC)
    protocol_namespace = request[:-len(REQUEST_TOPIC)]
    return system.part_name(node.get_fully_qualified_name(), protocol_namespace)


def resume(node: Node, p: SimpleNamespace, apply: Callable[[NodePart], None]) -> bool:
    """Load this node's part of a checkpoint and `apply` it; False when starting fresh.

    A node started again within the same run (same `run_name`: a supervisor's restart after
    a crash) rejoins from its run's newest complete checkpoint; otherwise `checkpoint` says
    where to resume from (empty: fresh). A missing, damaged or incompatible checkpoint is a
    ConfigureError saying what to do (the node's configure transition fails), rather than
    silently starting from scratch and overwriting what was learned.
    """
    own = latest_checkpoint(p.checkpoint_dir, run=p.run_name) if p.run_name else None
    ref = str(own) if own is not None else p.checkpoint
    if not ref:
        node.get_logger().info(f'starting fresh: no checkpoint of run {p.run_name!r} in '
                               f'{p.checkpoint_dir!r} and none asked for')
        return False
    try:
        part = load_part(CheckpointStore(p.checkpoint_dir).resolve(ref), part_name(node))
        apply(part)
    except (PersistenceError, OSError, KeyError, ValueError, RuntimeError) as error:
        raise ConfigureError(
            f'cannot resume from checkpoint {ref!r} in {p.checkpoint_dir!r}: '
            f'{type(error).__name__}: {error}. Start without checkpoint:=, or point it at a '
            f'checkpoint written by this version with the same model sizes.') from error
    how = 'rejoined run from its newest checkpoint' if own is not None else 'resumed from'
    node.get_logger().info(f'{how} {part.checkpoint}')
    return True


def training_log(node: Node, log_dir: str, run_name: str, resume_step: int) -> TrainingLog:
    """The node's TensorBoard log; a resumed run continues its curves from `resume_step`."""
    return TrainingLog(log_dir or '.', part_name(node), run_name=run_name or None,
                       enabled=bool(log_dir), resume_step=resume_step,
                       on_error=lambda error: node.get_logger().error(
                           f'training log disabled: {error}'))


class CheckpointParticipant:
    """Answers checkpoint requests with this node's part, one at a time."""

    def __init__(self, node: Node, checkpoint_dir: str, snapshot: Callable[[], Part | None],
                 errors: InputErrors) -> None:
        """`snapshot` returns None while the node has no state (a managed node not
        configured): the answer then says so, and the coordinator aborts that checkpoint."""
        self._node = node
        self._store = CheckpointStore(checkpoint_dir)
        self._snapshot = snapshot
        self._part = part_name(node)
        self._errors = errors
        self._writing = threading.Lock()
        self._done = node.create_publisher(String, DONE_TOPIC, qos.STREAM)
        node.create_subscription(String, REQUEST_TOPIC,
                                 errors.guard(REQUEST_TOPIC, self._on_request), qos.STREAM)

    def _on_request(self, msg: String) -> None:
        """Validate before the (costly) snapshot: only a name the coordinator began is served."""
        try:
            name = check_generated_name(msg.data)
        except ValueError as error:
            self._errors.report(REQUEST_TOPIC, str(error))
            return
        if not (self._store.staging / name).is_dir():
            self._errors.report(REQUEST_TOPIC, f'checkpoint {name} was not begun under '
                                               f'{self._store.root}; not writing a part')
            return
        if (self._store.staging / name / self._part).exists():
            self._errors.report(REQUEST_TOPIC, f'checkpoint {name}: my part is written '
                                               'already (a repeated request)')
            return
        if not self._writing.acquire(blocking=False):
            self._errors.report(REQUEST_TOPIC, f'checkpoint {name}: still writing the part of '
                                               'an earlier one')
            return
        try:
            part = self._snapshot()  # in the executor thread: consistent with the hot path
            if part is None:
                self._writing.release()
                self._done.publish(make_reply(name, self._part,
                                              'not configured: no state to save'))
                return
            threading.Thread(target=self._write, args=(name, part), daemon=True).start()
        except BaseException:
            self._writing.release()
            raise

    def _write(self, name: str, part: Part) -> None:
        error = ''
        try:
            self._store.write_part(name, self._part, **part)
        except (PersistenceError, OSError, ValueError) as failure:
            error = str(failure)
            self._node.get_logger().error(f'checkpoint {name}: could not write my part: {error}')
        finally:
            self._writing.release()
        self._done.publish(make_reply(name, self._part, error))


def check_parts(parts: list[str]) -> list[str]:
    """checkpoint_parts as node names; a ConfigureError names a bad entry."""
    try:
        return [check_name(part, 'checkpoint_parts entry') for part in parts]
    except ValueError as error:
        raise ConfigureError(f'bad parameter checkpoint_parts: {error}; list node names'
                             ) from error


class CheckpointCoordinator:
    """Takes checkpoints on request, periodically and at shutdown; keeps the newest N."""

    def __init__(self, node: Node, checkpoint_dir: str, keep: int, timeout_s: float,
                 parts: list[str], snapshot: Callable[[], Part], errors: InputErrors,
                 run_name: str = '') -> None:
        self._node = node
        self._errors = errors
        self._run_name = run_name
        self._parts = check_parts(parts)
        self._store = CheckpointStore(checkpoint_dir, keep=keep)
        self._timeout_s = timeout_s
        self._snapshot = snapshot
        self._part = part_name(node)
        self._request = node.create_publisher(String, REQUEST_TOPIC, qos.STREAM)
        self._latest = node.create_publisher(String, '~/last_checkpoint', qos.LATCHED)
        self._result = node.create_publisher(String, '~/checkpoint_result', qos.LATCHED)
        self._answers: dict[str, dict[str, dict]] = {}
        self._cond = threading.Condition()
        self._saving = threading.Lock()
        self.last = ''
        self.last_error = ''
        node.create_subscription(String, DONE_TOPIC, errors.guard(DONE_TOPIC, self._on_done),
                                 qos.STREAM)

    def _on_done(self, msg: String) -> None:
        try:
            reply = parse_reply(msg.data)
        except MessageError as error:
            self._errors.report(DONE_TOPIC, str(error))
            return
        if reply['node'] not in self._parts or reply['node'] == self._part:
            self._errors.report(DONE_TOPIC, f"reply from {reply['node']!r}, which is not one "
                                            f'of the parts {self._parts}')
            return
        with self._cond:
            if reply['name'] in self._answers:  # else a late answer to one that timed out
                self._answers[reply['name']][reply['node']] = reply
                self._cond.notify_all()

    def save_async(self) -> str:
        """Snapshot this node's part now, write the checkpoint on a worker thread; returns its
        name ('' if one is running). The snapshot is taken in the caller's thread, so a
        managed node may drop its state as soon as this returns (cleanup, shutdown)."""
        if not self._saving.acquire(blocking=False):
            return ''
        try:
            name = self._store.begin()
            part = self._snapshot()
        except BaseException:
            self._saving.release()
            raise
        threading.Thread(target=self._save_and_release, args=(name, part), daemon=True).start()
        return name

    def _save_and_release(self, name: str, part: Part) -> None:
        try:
            self._save(name, part)
        finally:
            self._saving.release()

    def save(self, name: str | None = None) -> Path | None:
        """Take one checkpoint; returns its folder, or None (the reason is logged)."""
        with self._saving:
            return self._save(name or self._store.begin(), self._snapshot())

    def _save(self, name: str, part: Part) -> Path | None:
        others = [n for n in self._parts if n != self._part]
        with self._cond:
            self._answers[name] = {}
        self._request.publish(String(data=name))
        try:
            self._store.write_part(name, self._part, **part)
            with self._cond:
                self._cond.wait_for(lambda: set(self._answers[name]) >= set(others),
                                    self._timeout_s)
                answers = dict(self._answers[name])
            failed = [f"{n}: {a['error']}" for n, a in answers.items() if not a['ok']]
            missing = sorted(set(others) - set(answers))
            if failed or missing:
                raise PersistenceError('; '.join(failed + [f'{n}: no answer within '
                                                           f'{self._timeout_s:g} s'
                                                           for n in missing]))
            path = self._store.finalize(name, [self._part, *others],
                                         run=self._run_name)
        except (PersistenceError, OSError) as error:
            self._store.abort(name)
            self.last_error = f'checkpoint {name} not taken: {error}'
            self._node.get_logger().error(self.last_error + '; the previous one is intact')
            self._result.publish(String(data=json.dumps(
                {'name': name, 'ok': False, 'error': self.last_error})))
            return None
        finally:
            with self._cond:
                self._answers.pop(name, None)
        self.last, self.last_error = str(path), ''
        self._latest.publish(String(data=self.last))
        self._result.publish(String(data=json.dumps(
            {'name': name, 'ok': True, 'path': self.last})))
        self._node.get_logger().info(f'checkpoint saved: {path} ({len(others) + 1} parts)')
        return path


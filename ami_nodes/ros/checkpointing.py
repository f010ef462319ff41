"""Checkpoints across processes: the learner coordinates, every torch node writes its part.

Protocol (standard types only): the coordinator reserves a name and publishes it on
`checkpoint/request` (std_msgs/String); each participant snapshots its state in its own
executor thread (consistent with its hot path), writes its part on a worker thread and answers
on `checkpoint/done` (std_msgs/String, JSON). The coordinator finalizes the checkpoint when
every participant that was listening has answered, or aborts it, so a checkpoint in the root
is always whole (ami_nodes.persistence.checkpoint).

The topics are relative, so systems under different namespaces keep their checkpoints apart.
A fleet's robots remap them into the fleet's namespace; a node's part is named by its path
relative to the namespace where the request topic lives (`robot_0-policy_node`).
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from rclpy.node import Node
from std_msgs.msg import String

from ami_nodes import system
from ami_nodes.monitoring.training_log import TrainingLog
from ami_nodes.persistence import (CheckpointStore, NodePart, PersistenceError,
                                   latest_checkpoint, load_part)
from ami_nodes.ros import qos
from ami_nodes.ros.params import Param

REQUEST_TOPIC = 'checkpoint/request'
DONE_TOPIC = 'checkpoint/done'

PARAMETERS = (
    Param('checkpoint_dir', 'checkpoints', 'Folder of checkpoints (one sub-folder each)'),
    Param('checkpoint', '', "Resume from this checkpoint folder, or 'latest' (empty: fresh)"),
    Param('log_dir', 'runs', 'Folder of TensorBoard training logs (empty: no training log)'),
    Param('run_name', '', 'Training-log run folder name (empty: this start time)'),
)

#: What a node hands to CheckpointStore.write_part: models, trainers, data, interaction, params.
Part = dict[str, Any]


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
    where to resume from (empty: fresh). A missing, damaged or incompatible checkpoint stops
    the node with a message saying what to do, rather than silently starting from scratch
    and overwriting what was learned.
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
        node.get_logger().fatal(
            f'cannot resume from checkpoint {ref!r} in {p.checkpoint_dir!r}: '
            f'{type(error).__name__}: {error}. Start without checkpoint:=, or point it at a '
            f'checkpoint written by this version with the same model sizes.')
        raise SystemExit(2) from error
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
    """Answers checkpoint requests with this node's part."""

    def __init__(self, node: Node, checkpoint_dir: str, snapshot: Callable[[], Part]) -> None:
        self._node = node
        self._store = CheckpointStore(checkpoint_dir)
        self._snapshot = snapshot
        self._part = part_name(node)
        self._done = node.create_publisher(String, DONE_TOPIC, qos.STREAM)
        node.create_subscription(String, REQUEST_TOPIC, self._on_request, qos.STREAM)

    def _on_request(self, msg: String) -> None:
        name = msg.data
        part = self._snapshot()  # in the executor thread: consistent with the hot path
        threading.Thread(target=self._write, args=(name, part), daemon=True).start()

    def _write(self, name: str, part: Part) -> None:
        reply = {'name': name, 'node': self._part, 'ok': True, 'error': ''}
        try:
            self._store.write_part(name, self._part, **part)
        except (PersistenceError, OSError) as error:
            reply.update(ok=False, error=str(error))
            self._node.get_logger().error(f'checkpoint {name}: could not write my part: {error}')
        self._done.publish(String(data=json.dumps(reply)))


class CheckpointCoordinator:
    """Takes checkpoints on request, periodically and at shutdown; keeps the newest N."""

    def __init__(self, node: Node, checkpoint_dir: str, keep: int, timeout_s: float,
                 parts: list[str], snapshot: Callable[[], Part], run_name: str = '') -> None:
        self._node = node
        self._run_name = run_name
        self._parts = parts
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
        node.create_subscription(String, DONE_TOPIC, self._on_done, qos.STREAM)

    def _on_done(self, msg: String) -> None:
        reply = json.loads(msg.data)
        with self._cond:
            if reply.get('name') in self._answers:
                self._answers[reply['name']][reply['node']] = reply
                self._cond.notify_all()

    def save_async(self) -> str:
        """Start a checkpoint on a worker thread; returns its name ('' if one is running)."""
        if self._saving.locked():
            return ''
        name = self._store.begin()
        threading.Thread(target=self.save, args=(name,), daemon=True).start()
        return name

    def save(self, name: str | None = None) -> Path | None:
        """Take one checkpoint; returns its folder, or None (the reason is logged)."""
        with self._saving:
            name = name or self._store.begin()
            others = [n for n in self._parts if n != self._part]
            with self._cond:
                self._answers[name] = {}
            self._request.publish(String(data=name))
            try:
                self._store.write_part(name, self._part, **self._snapshot())
                with self._cond:
                    self._cond.wait_for(lambda: set(self._answers[name]) >= set(others),
                                        self._timeout_s)
                    answers = self._answers.pop(name)
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
            self.last, self.last_error = str(path), ''
            self._latest.publish(String(data=self.last))
            self._result.publish(String(data=json.dumps(
                {'name': name, 'ok': True, 'path': self.last})))
            self._node.get_logger().info(f'checkpoint saved: {path} ({len(others) + 1} parts)')
            return path


"""Start real node processes and watch their topics from an in-test rclpy node."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from rclpy.node import Node

from ami_nodes.ros import services

REPO = Path(__file__).resolve().parent.parent
#: config/ami.yaml acts in held_bandit: one step of experience per 0.25-2 s hold, so PPO versions
#: ship a minute or more apart. The system tests that count versions act per tick instead, as
#: config/ami_target.yaml does.
PER_TICK_POLICY = {'action_mode': 'sample'}


def start_node(module: str, name: str, params: dict | None = None,
               params_file: Path | None = None, log: Path | None = None) -> subprocess.Popen:
    """Run `python -m module` as its own process, as the launcher does."""
    command = [sys.executable, '-m', module, '--ros-args', '-r', f'__node:={name}']
    if params_file is not None:
        command += ['--params-file', str(params_file)]
    for key, value in (params or {}).items():
        command += ['-p', f'{key}:={value}']
    out = open(log, 'w') if log else subprocess.DEVNULL
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                            env=dict(os.environ))


def start_launcher(config: Path, checkpoint_dir: Path, log: Path, *extra: str,
                   log_dir: Path | str = '', status_period: float = 0) -> subprocess.Popen:
    """Run ami_launch on `config` as a user would; its output goes to `log`."""
    return subprocess.Popen(
        [sys.executable, '-m', 'ami_nodes.tools.launcher', '--config', str(config),
         '--checkpoint-dir', str(checkpoint_dir), '--log-dir', str(log_dir),
         '--status-period', f'{status_period:g}', *extra],
        stdout=open(log, 'w'), stderr=subprocess.STDOUT, cwd=REPO)


def stop(process: subprocess.Popen, timeout_s: float = 120.0) -> int:
    """SIGINT and wait; the exit code (a hang is killed and fails the caller's assert). The
    bound is for a launcher on a loaded machine: a final save (up to 30 s), then each child."""
    return stop_all(process, timeout_s=timeout_s)[0]


def stop_all(*processes: subprocess.Popen, timeout_s: float = 120.0) -> list[int]:
    """SIGINT every process first, then wait for each (they stop side by side)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout_s))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            codes.append(-9)
    return codes


class Watcher:
    """An rclpy node inside the test that records what arrives on topics."""

    def __init__(self, name: str = 'test_watcher') -> None:
        if not rclpy.ok():
            rclpy.init()
        self.node: Node = rclpy.create_node(name)
        self.received: dict[str, list] = {}

    def subscribe(self, msg_type, topic: str, qos=10) -> list:
        messages: list = []
        self.received[topic] = messages
        self.node.create_subscription(msg_type, topic, messages.append, qos)
        return messages

    def spin_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rclpy.spin_once(self.node, timeout_sec=0.05)
            if predicate():
                return True
        return predicate()

    def publish_until(self, publisher, message, predicate: Callable[[], bool],
                      timeout_s: float, every_s: float = 0.5) -> bool:
        """Publish `message` every `every_s` until `predicate` holds: a best-effort message can
        be lost, so what must arrive is sent again."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            publisher.publish(message)
            if self.spin_until(predicate, min(every_s, deadline - time.monotonic())):
                return True
        return predicate()

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def close(self) -> None:
        self.node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


def children(parent_pid: int) -> dict[int, str]:
    """pid -> command line of each running (not zombie) child of `parent_pid` (Linux /proc)."""
    found = {}
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
            cmdline = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode()
        except OSError:
            continue  # exited meanwhile
        fields = stat.rsplit(')', 1)[1].split()
        if int(fields[1]) == parent_pid and fields[0] != 'Z':
            found[int(entry.name)] = cmdline
    return found


def child_pid(parent_pid: int, needle: str) -> int | None:
    """The pid of `parent_pid`'s child whose command line contains `needle`, if running."""
    return next((pid for pid, cmdline in children(parent_pid).items() if needle in cmdline),
                None)


def diagnostic_values(diagnostics: list, node: str) -> list[dict[str, str]]:
    """The key values of every /diagnostics status `node` published, oldest first."""
    return [{kv.key: kv.value for kv in status.values}
            for array in diagnostics for status in array.status if status.name == node]


def rejected(diagnostics: list, node: str, at_least: int, text: str = '') -> bool:
    """Whether `node` reported at least `at_least` rejected inputs, the last one saying `text`."""
    return any(int(v['rejected_inputs']) >= at_least and text in v['last_rejected']
               for v in diagnostic_values(diagnostics, node))


def lifecycle_state(watcher: Watcher, node: str, timeout_s: float = 60.0) -> str:
    """The lifecycle state label of `node` (e.g. '/policy_node'), through GetState."""
    from lifecycle_msgs.srv import GetState
    return _call(watcher, GetState, f'{node}/get_state', GetState.Request(),
                 timeout_s).current_state.label


def change_state(watcher: Watcher, node: str, transition_id: int,
                 timeout_s: float = 60.0) -> bool:
    """Whether `node` took the transition (lifecycle_msgs Transition id), through ChangeState,
    as `ros2 lifecycle set` does."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    return _call(watcher, ChangeState, f'{node}/change_state',
                 ChangeState.Request(transition=Transition(id=transition_id)),
                 timeout_s, probe=services.lifecycle_probe()).success


def _call(watcher: Watcher, srv_type, name: str, request, timeout_s: float, probe=None):
    """The response (services.call, which sends again what DDS discovery lost)."""
    response = services.call(watcher.node, srv_type, name, request, watcher.spin_until,
                             timeout_s, probe=probe)
    assert not isinstance(response, str), response
    return response


def answered(watcher: Watcher, client, request, timeout_s: float = 60.0) -> bool:
    """Whether `client` got an answer to `request`, sent again until one came."""
    return services.answer(client, request, watcher.spin_until, timeout_s) is not None

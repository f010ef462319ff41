"""ami_launch: start the world and the five nodes from config/ami.yaml, without ros2 launch.

The pip install has no `launch` or `ros2cli`, so this starts the same processes that
launch/ami.launch.py starts (ami_nodes.system describes both), prefixes their output, prints
a status line from /diagnostics, and on Ctrl-C, SIGTERM or --duration stops the nodes first
(the OSC bridge releases every input), then the world.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import yaml

from ami_nodes import system
from ami_nodes.monitoring.training_log import default_run_name
from ami_nodes.tools.supervision import RestartPolicy, RestartTracker

WORLD_SUMMARY = 'AMI_WORLD_SUMMARY '
PR_SET_PDEATHSIG = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='ami_launch', description=__doc__.splitlines()[0])
    for arg in system.LAUNCH_ARGUMENTS:
        parser.add_argument(f"--{arg.name.replace('_', '-')}", default=arg.default,
                            choices=arg.choices or None, help=arg.description)
    parser.add_argument('--duration', type=float, default=0.0,
                        help='Stop after this many seconds (0: run until Ctrl-C)')
    parser.add_argument('--status-period', type=float, default=5.0,
                        help='Seconds between status lines (0: none)')
    return parser.parse_args(argv)


class Child:
    """A supervised process whose output is copied to ours with a name prefix.

    An exit it was not asked for is a fault: `supervise` starts it again after a back-off
    (RestartTracker), or gives up on it after too many restarts and says so.
    """

    def __init__(self, name: str, command: list[str], env: dict[str, str],
                 policy: RestartPolicy = system.RESTART_POLICY) -> None:
        self.name = name
        self.summary: dict | None = None
        self.tracker = RestartTracker(policy)
        self._command = command
        self._env = env
        self._restart_at: float | None = None
        self._start()

    def _start(self) -> None:
        self.process = subprocess.Popen(
            self._command, env=self._env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, text=True, bufsize=1, preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._copy_output, args=(self.process,),
                                        daemon=True)
        self._reader.start()

    def _copy_output(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            if line.startswith(WORLD_SUMMARY):
                self.summary = json.loads(line[len(WORLD_SUMMARY):])
            print(f'[{self.name}] {line}', end='', flush=True)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def supervise(self, now: float) -> None:
        """Called often: notice an unasked exit, and restart when its back-off has passed."""
        if self.alive or self.tracker.given_up:
            return
        if self._restart_at is None:
            code = self.process.returncode
            delay = self.tracker.delay_after_exit(now)
            if delay is None:
                policy = self.tracker.policy
                print(f'[ami_launch] {self.name} exited with code {code}; it was restarted '
                      f'{policy.max_restarts} times within {policy.window_s:g} s, so it stays '
                      'down (the rest keeps running)', flush=True)
                return
            print(f'[ami_launch] {self.name} exited with code {code}; restart '
                  f'{self.tracker.restarts} in {delay:g} s', flush=True)
            self._restart_at = now + delay
        elif now >= self._restart_at:
            self._restart_at = None
            self._reader.join(timeout=1.0)
            self._start()
            print(f'[ami_launch] {self.name} started again (pid {self.process.pid})', flush=True)

    def stop(self, timeout_s: float) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL; the exit code, or None when it was down
        (waiting for a restart) already."""
        if self._restart_at is not None:
            return None
        for sig, wait_s in ((signal.SIGINT, timeout_s), (signal.SIGTERM, 5.0),
                            (signal.SIGKILL, 5.0)):
            if self.process.poll() is not None:
                break
            self.process.send_signal(sig)
            try:
                self.process.wait(wait_s)
            except subprocess.TimeoutExpired:
                print(f'[ami_launch] {self.name} did not stop on {sig.name}', flush=True)
        self._reader.join(timeout=2.0)
        return self.process.wait()


def _die_with_parent() -> None:
    """Linux: SIGTERM the child if the launcher itself is killed, so no node is orphaned."""
    try:
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: Ctrl-C and SIGTERM to the launcher still stop every child


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(system.fastdds_profile()))
    env['PYTHONUNBUFFERED'] = '1'
    return env


def node_command(spec: system.NodeSpec, config: Path, args: argparse.Namespace) -> list[str]:
    """The same command line ros2 launch builds: params file, then the shared arguments."""
    command = [sys.executable, '-m', spec.module, '--ros-args', '-r', f'__node:={spec.name}',
               '--params-file', str(config)]
    for name in system.SHARED_FROM_ARGUMENTS:
        command += ['-p', f'{name}:={json.dumps(str(getattr(args, name)))}']  # YAML string
    for source, target in spec.remappings:
        command += ['-r', f'{source}:={target}']
    return command


def wait_for_world(params: dict, timeout_s: float = 15.0) -> bool:
    url = f"http://{params.get('host', '127.0.0.1')}:{params.get('http_port', 8090)}/state"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.run_name = args.run_name or default_run_name()
    config = Path(args.config) if args.config else system.default_config()
    description = yaml.safe_load(config.read_text())
    env = child_env()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    world = None
    if args.world == 'true':
        world_params = description.get(system.WORLD_SECTION, {}).get('ros__parameters', {})
        world = Child('ami_world', [sys.executable, '-m', 'ami_nodes.world.main',
                                    *system.world_arguments(world_params)], env)
        if not wait_for_world(world_params):
            print('[ami_launch] the world did not come up; see its output above', flush=True)
            world.stop(5.0)
            return 1
    children = [Child(spec.name, node_command(spec, config, args), env)
                for spec in system.nodes_for(args.actuator)]
    print(f"[ami_launch] started {', '.join(c.name for c in children)}"
          f"{' and ami_world' if world else ''}; Ctrl-C stops everything", flush=True)

    supervised = [*children, *([world] if world else [])]
    monitor = SystemMonitor(args.status_period, supervised)
    started = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if args.duration and now - started >= args.duration:
            break
        for child in supervised:
            child.supervise(now)
        monitor.maybe_print(now - started)
        stop.wait(0.2)

    if any(c.name == 'learner_node' and c.alive for c in children):
        print(f'[ami_launch] final checkpoint: {monitor.final_checkpoint()}', flush=True)
    codes = {c.name: c.stop(timeout_s=20.0) for c in children}
    monitor.close()
    if world is not None:
        codes[world.name] = world.stop(timeout_s=5.0)
        held = (world.summary or {}).get('held_inputs')
        print(f'[ami_launch] world saw inputs held at exit: {held}', flush=True)
    restarts = {c.name: c.tracker.restarts for c in supervised if c.tracker.restarts}
    if restarts:
        print(f'[ami_launch] restarts: {restarts}', flush=True)
    failed = {name: code for name, code in codes.items() if code not in (0, None)}
    failed |= {c.name: 'gave up' for c in supervised if c.tracker.given_up}
    if failed:
        print(f'[ami_launch] exited with errors: {failed}', flush=True)
        return 1
    print(f'[ami_launch] all processes exited cleanly after {time.monotonic() - started:.0f} s',
          flush=True)
    return 0


class SystemMonitor:
    """An rclpy node of our own, in a background thread: status lines, the supervisor's
    report on /diagnostics, and the final save."""

    def __init__(self, period_s: float, supervised: list[Child]) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from ami_nodes.ros.diagnostics import DiagnosticsPublisher
        from ami_nodes.tools.control import Control
        from ami_nodes.tools.status import StatusCollector
        self._period_s = period_s
        self._next = period_s
        self._supervised = supervised
        self._context = rclpy.Context()
        rclpy.init(context=self._context, signal_handler_options=rclpy.SignalHandlerOptions.NO)
        self._node = rclpy.create_node('ami_launch', context=self._context)
        self.collector = StatusCollector(self._node)
        self._control = Control(self._node)
        DiagnosticsPublisher(self._node, self._report)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:  # the context was shut down under us at exit
            pass

    def supervision(self) -> dict[str, object]:
        """Restarts of each process, and which are down now (waiting, or given up)."""
        values: dict[str, object] = {f'restarts/{c.name}': c.tracker.restarts
                                     for c in self._supervised}
        values['down'] = ' '.join(c.name for c in self._supervised if not c.alive)
        values['given_up'] = ' '.join(c.name for c in self._supervised if c.tracker.given_up)
        return values

    def _report(self):
        from ami_nodes.ros import diagnostics
        values = self.supervision()
        if values['given_up']:
            return diagnostics.ERROR, f"stays down: {values['given_up']}", values
        if values['down']:
            return diagnostics.WARN, f"restarting: {values['down']}", values
        restarts = sum(c.tracker.restarts for c in self._supervised)
        return diagnostics.OK, f'every process running, {restarts} restarts', values

    def maybe_print(self, elapsed_s: float) -> None:
        from ami_nodes.tools.status import format_line
        if self._period_s > 0 and elapsed_s >= self._next:
            self._next += self._period_s
            print(format_line(self.collector.snapshot(), elapsed_s, self.supervision()),
                  flush=True)

    def final_checkpoint(self) -> str:
        """Ask the learner for a checkpoint before anything stops (pamiq-core's final save)."""
        return self._control.save(timeout_s=30.0)[1]

    def close(self) -> None:
        self._executor.shutdown()
        self._thread.join(timeout=5.0)
        self._node.destroy_node()
        self._context.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())

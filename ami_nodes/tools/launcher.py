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
    """One started process whose output is copied to ours with a name prefix."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.summary: dict | None = None
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, text=True, bufsize=1, preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._copy_output, daemon=True)
        self._reader.start()

    def _copy_output(self) -> None:
        for line in self.process.stdout:
            if line.startswith(WORLD_SUMMARY):
                self.summary = json.loads(line[len(WORLD_SUMMARY):])
            print(f'[{self.name}] {line}', end='', flush=True)

    def stop(self, timeout_s: float) -> int:
        """SIGINT, then SIGTERM, then SIGKILL; return the exit code."""
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

    monitor = SystemMonitor(args.status_period)
    started = time.monotonic()
    while not stop.is_set():
        if args.duration and time.monotonic() - started >= args.duration:
            break
        dead = [c for c in children if c.process.poll() is not None]
        if dead:
            print(f'[ami_launch] {dead[0].name} exited with code {dead[0].process.returncode}; '
                  f'stopping the rest', flush=True)
            break
        monitor.maybe_print(time.monotonic() - started)
        stop.wait(0.2)

    if all(c.process.poll() is None for c in children) and \
            any(c.name == 'learner_node' for c in children):
        print(f'[ami_launch] final checkpoint: {monitor.final_checkpoint()}', flush=True)
    codes = {c.name: c.stop(timeout_s=20.0) for c in children}
    monitor.close()
    if world is not None:
        codes[world.name] = world.stop(timeout_s=5.0)
        held = (world.summary or {}).get('held_inputs')
        print(f'[ami_launch] world saw inputs held at exit: {held}', flush=True)
    failed = {name: code for name, code in codes.items() if code != 0}
    if failed:
        print(f'[ami_launch] exited with errors: {failed}', flush=True)
        return 1
    print(f'[ami_launch] all processes exited cleanly after {time.monotonic() - started:.0f} s',
          flush=True)
    return 0


class SystemMonitor:
    """An rclpy node of our own, in a background thread: status lines and the final save."""

    def __init__(self, period_s: float) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from ami_nodes.tools.control import Control
        from ami_nodes.tools.status import StatusCollector
        self._period_s = period_s
        self._next = period_s
        self._context = rclpy.Context()
        rclpy.init(context=self._context, signal_handler_options=rclpy.SignalHandlerOptions.NO)
        self._node = rclpy.create_node('ami_launch_monitor', context=self._context)
        self.collector = StatusCollector(self._node)
        self._control = Control(self._node)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:  # the context was shut down under us at exit
            pass

    def maybe_print(self, elapsed_s: float) -> None:
        from ami_nodes.tools.status import format_line
        if self._period_s > 0 and elapsed_s >= self._next:
            self._next += self._period_s
            print(format_line(self.collector.snapshot(), elapsed_s), flush=True)

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

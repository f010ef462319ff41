"""ami_launch: start the world and the five nodes from config/ami.yaml, without ros2 launch.

The pip install has no `launch` or `ros2cli`, so this starts the same processes that
launch/ami.launch.py starts (ami_nodes.system describes and places both: --namespace,
--robots N for a fleet), prefixes their output, prints a status line from /diagnostics, and
on Ctrl-C, SIGTERM or --duration stops the nodes first (the OSC bridge releases every input),
then the worlds.
"""
from __future__ import annotations

import argparse
import ctypes
import faulthandler
import json
import os
import signal
import subprocess
import sys
import tempfile
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
    args = parser.parse_args(argv)
    if not args.robots.isdigit() or int(args.robots) < 1:
        parser.error(f'--robots must be a whole number of at least 1, got {args.robots!r}')
    return args


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


def node_command(node: system.PlacedNode, params_file: Path) -> list[str]:
    """The same command line ros2 launch builds: name, namespace, parameters, remappings.

    `params_file` is system.parameters_file(plan) written out: its sections are keyed by
    fully qualified names, so a node in a namespace finds its parameters.
    """
    command = [sys.executable, '-m', node.spec.module, '--ros-args',
               '-r', f'__node:={node.spec.name}', '-r', f'__ns:={node.namespace}',
               '--params-file', str(params_file)]
    for source, target in node.remappings:
        command += ['-r', f'{source}:={target}']
    return command


def write_parameters(plan: system.Plan, folder: Path) -> Path:
    path = folder / 'parameters.yaml'
    path.write_text(yaml.safe_dump(system.parameters_file(plan)))
    return path


def start_worlds(plan: system.Plan, env: dict[str, str]) -> list[Child] | None:
    """Start every world and wait until each serves; None (all stopped) if one did not."""
    worlds = [Child(world.name, [sys.executable, '-m', 'ami_nodes.world.main',
                                 *system.world_arguments(world.parameters)], env)
              for world in plan.worlds]
    for world in plan.worlds:
        if not wait_for_world(world.parameters):
            print(f'[ami_launch] {world.name} did not come up; see its output above', flush=True)
            for started in worlds:
                started.stop(5.0)
            return None
    return worlds


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
    plan = system.plan(yaml.safe_load(config.read_text()), vars(args))
    env = child_env()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    worlds = start_worlds(plan, env)
    if worlds is None:
        return 1
    run_folder = tempfile.TemporaryDirectory(prefix='ami_launch_')
    params_file = write_parameters(plan, Path(run_folder.name))
    children = [Child(node.fully_qualified_name.lstrip('/'), node_command(node, params_file), env)
                for node in plan.nodes]
    learner = next((c for c, node in zip(children, plan.nodes)
                    if node.spec.name == system.LEARNER), None)
    print(f"[ami_launch] started {', '.join(c.name for c in children)}"
          f"{''.join(f' and {w.name}' for w in worlds)}; Ctrl-C stops everything", flush=True)

    supervised = [*children, *worlds]
    monitor = SystemMonitor(args.status_period, supervised, plan)
    started = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if args.duration and now - started >= args.duration:
            break
        for child in supervised:
            child.supervise(now)
        monitor.maybe_print(now - started)
        stop.wait(0.2)

    if learner is not None and learner.alive:
        print(f'[ami_launch] final checkpoint: {monitor.final_checkpoint()}', flush=True)
    codes = {c.name: c.stop(timeout_s=20.0) for c in children}
    run_folder.cleanup()
    for world in worlds:
        codes[world.name] = world.stop(timeout_s=5.0)
        held = (world.summary or {}).get('held_inputs')
        print(f'[ami_launch] {world.name} saw inputs held at exit: {held}', flush=True)
    monitor.close()
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

    def __init__(self, period_s: float, supervised: list[Child], plan: system.Plan) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from ami_nodes.ros.diagnostics import DiagnosticsPublisher
        from ami_nodes.tools.control import Control
        from ami_nodes.tools.status import StatusCollector
        self._period_s = period_s
        self._next = period_s
        self._supervised = supervised
        self._plan = plan
        self._context = rclpy.Context()
        rclpy.init(context=self._context, signal_handler_options=rclpy.SignalHandlerOptions.NO)
        self._node = rclpy.create_node('ami_launch', namespace=plan.namespace,
                                       context=self._context)
        self.collector = StatusCollector(self._node)
        self._control = Control(self._node, plan.namespace, plan.robot_namespaces)
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
            print(format_line(self.collector.snapshot(self._plan.namespace), elapsed_s,
                              self.supervision(), self._plan.namespace,
                              self._plan.robot_namespaces), flush=True)

    def final_checkpoint(self) -> str:
        """Ask the learner for a checkpoint before anything stops (pamiq-core's final save)."""
        return self._control.save(timeout_s=30.0)[1]

    def close(self, timeout_s: float = 10.0) -> None:
        """Tear our own node down, last and bounded. Once, in a `make test` on a loaded
        machine, a launcher hung after its final save and never reached its worlds; this
        rclpy teardown is the step there that can block. If it does, say where (every
        thread's stack) and leave the rest to the process exit."""
        def teardown() -> None:
            self._executor.shutdown(timeout_sec=timeout_s)
            self._thread.join(timeout=timeout_s)
            self._node.destroy_node()
            self._context.try_shutdown()
        closing = threading.Thread(target=teardown, daemon=True)
        closing.start()
        closing.join(timeout_s)
        if closing.is_alive():
            print(f'[ami_launch] its own ROS node did not shut down in {timeout_s:g} s; '
                  'exiting without it. Stacks:', flush=True)
            faulthandler.dump_traceback(sys.stdout, all_threads=True)


if __name__ == '__main__':
    sys.exit(main())

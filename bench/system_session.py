"""The whole system (world + five nodes via ami_launch) on free ports in its own ROS domain,
watched by a probe node in this process that records what a downstream driver would see."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Float32, Int64
from std_srvs.srv import SetBool

from ami_nodes.ros import qos, services
from ami_nodes.ros.messages import stamp_to_ns
from ami_nodes.tools.launch_config import write_config
from bench import procmem
from bench.machine import REPO


def ros_env(domain_id: int) -> dict[str, str]:
    return {**os.environ, 'ROS_DOMAIN_ID': str(domain_id),
            'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'PYTHONUNBUFFERED': '1'}


@dataclass
class Records:
    """Everything the probe saw, each with its monotonic arrival time."""

    cmd_vel: list[tuple[float, int, int]] = field(default_factory=list)  # (t, now_ns, stamp_ns)
    policy_latency: list[tuple[float, float]] = field(default_factory=list)
    osc_latency: list[tuple[float, float]] = field(default_factory=list)
    versions: list[tuple[float, int]] = field(default_factory=list)
    train_every: list[tuple[float, float]] = field(default_factory=list)
    rss: list[tuple[float, dict]] = field(default_factory=list)
    learner_versions: list[tuple[float, int]] = field(default_factory=list)
    diagnostics: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)


class SystemSession:
    """Start with `start()`, take measurement windows with `wait(seconds)`, `stop()` at the end."""

    def __init__(self, workdir: Path, domain_id: int, overrides: dict[str, dict],
                 rss_period_s: float = 5.0) -> None:
        self.workdir = workdir
        self.domain_id = domain_id
        self.config = write_config(workdir / 'ami.yaml', overrides)
        self.log = workdir / 'launch.log'
        self.records = Records()
        self._rss_period_s = rss_period_s
        self._stopping = threading.Event()
        self.launcher: subprocess.Popen | None = None

    # --- probe --------------------------------------------------------------------------
    def _start_probe(self) -> None:
        self._context = rclpy.Context()
        rclpy.init(context=self._context, domain_id=self.domain_id,
                   signal_handler_options=rclpy.SignalHandlerOptions.NO)
        node = rclpy.create_node('bench_probe', context=self._context)
        r = self.records
        node.create_subscription(TwistStamped, 'cmd_vel', lambda m: r.cmd_vel.append(
            (time.monotonic(), time.time_ns(), stamp_to_ns(m.header.stamp))), qos.STREAM)
        for topic, sink in (('/policy_node/latency_ms', r.policy_latency),
                            ('/osc_bridge_node/latency_ms', r.osc_latency),
                            ('/perception_node/train_every', r.train_every)):
            node.create_subscription(Float32, topic, lambda m, s=sink: s.append(
                (time.monotonic(), float(m.data))), qos.MONITOR)
        node.create_subscription(Int64, '/policy_node/version', lambda m: r.versions.append(
            (time.monotonic(), int(m.data))), qos.LATCHED)
        node.create_subscription(Float32, '/learner_node/version', lambda m: r.learner_versions.append(
            (time.monotonic(), int(m.data))), qos.MONITOR)
        node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: r.diagnostics.extend(
            (time.monotonic(), s.name, {kv.key: kv.value for kv in s.values}) for s in m.status), 50)
        self._learning = node.create_client(SetBool, '/learner_node/set_learning')
        self._node = node
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(node)
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:  # the context was shut down under us in stop()
            pass

    def _sample_rss(self) -> None:
        while not self._stopping.wait(self._rss_period_s):
            if self.launcher is not None and self.launcher.poll() is None:
                self.records.rss.append((time.monotonic(), procmem.sample(self.launcher.pid)))

    # --- life cycle ---------------------------------------------------------------------
    def start(self, timeout_s: float = 120.0) -> float:
        """Start everything; return seconds until the first cmd_vel reached the probe."""
        self._start_probe()
        started = time.monotonic()
        self.launcher = subprocess.Popen(
            [sys.executable, '-m', 'ami_nodes.tools.launcher', '--config', str(self.config),
             '--checkpoint-dir', str(self.workdir / 'checkpoints'),
             '--log-dir', str(self.workdir / 'runs'), '--status-period', '0'],
            stdout=open(self.log, 'w'), stderr=subprocess.STDOUT, cwd=REPO,
            env=ros_env(self.domain_id))
        threading.Thread(target=self._sample_rss, daemon=True).start()
        while not self.records.cmd_vel:
            if self.launcher.poll() is not None or time.monotonic() - started > timeout_s:
                raise RuntimeError(f'the system did not act; log:\n{self.log.read_text()[-3000:]}')
            time.sleep(0.1)
        return time.monotonic() - started

    def set_learning(self, on: bool, timeout_s: float = 10.0) -> bool:
        """Train or pause the learner through its std_srvs/SetBool service."""
        if not self._learning.wait_for_service(timeout_sec=timeout_s):
            return False
        answer = services.answer(self._learning, SetBool.Request(data=on),
                                 services.sleeping_wait, timeout_s)
        return bool(answer is not None and answer.success)

    def window(self, seconds: float) -> tuple[float, float]:
        """Let the system run; the (start, end) monotonic times to slice the records with."""
        start = time.monotonic()
        time.sleep(seconds)
        return start, time.monotonic()

    def stop(self) -> int:
        """Ctrl-C the launcher (it stops nodes then world) and close the probe."""
        self._stopping.set()
        code = -1
        if self.launcher is not None:
            self.launcher.send_signal(signal.SIGINT)
            try:
                code = self.launcher.wait(60)
            except subprocess.TimeoutExpired:
                self.launcher.kill()
                code = self.launcher.wait()
        self._executor.shutdown()
        self._node.destroy_node()
        self._context.try_shutdown()
        return code


def between(rows: list[tuple], span: tuple[float, float]) -> list[tuple]:
    """The records whose arrival time falls inside a window."""
    return [row for row in rows if span[0] <= row[0] <= span[1]]

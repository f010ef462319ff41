"""The whole system (world + five ROS nodes under ami_launch) run for an evaluation, watched
through the world's ground truth (its HTTP `/state`), as the live evaluations need it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from ami_nodes import system

#: How often the world's ground truth is read.
SAMPLE_PERIOD_S = 5.0


def world_state(port: int) -> dict:
    """The world's ground truth (`/state` on its HTTP port)."""
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/state', timeout=10) as response:
        return json.loads(response.read())


class LiveRun:
    """ami_launch on `config` (its logs, checkpoints and training logs under `workdir`), in
    ROS domain `domain_id` (None: this process's) with discovery kept on this host.

        with LiveRun(config, workdir, 'sticky seed 0') as run:
            for state in run.samples():
                ...  # break when done; leaving the block stops the system (run.exit_code)
    """

    def __init__(self, config: Path, workdir: Path, label: str,
                 domain_id: int | None = None) -> None:
        self.config, self.workdir, self.label = config, workdir, label
        self.log = workdir / 'launch.log'
        self.port = yaml.safe_load(config.read_text())[system.WORLD_SECTION][
            'ros__parameters']['http_port']
        self._env = {**os.environ, 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
        if domain_id is not None:
            self._env['ROS_DOMAIN_ID'] = str(domain_id)
        self.exit_code: int | None = None
        self._launcher: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self._launcher.pid

    def __enter__(self) -> LiveRun:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._launcher = subprocess.Popen(
            [sys.executable, '-m', 'ami_nodes.tools.launcher', '--config', str(self.config),
             '--checkpoint-dir', str(self.workdir / 'checkpoints'),
             '--log-dir', str(self.workdir / 'runs'), '--status-period', '30'],
            stdout=open(self.log, 'w'), stderr=subprocess.STDOUT, env=self._env)
        return self

    def samples(self, period_s: float = SAMPLE_PERIOD_S) -> Iterator[dict]:
        """The world's state every `period_s`, from the first answer on (until the caller
        stops asking); SystemExit if the system stops."""
        while True:
            time.sleep(period_s)
            try:
                state = world_state(self.port)
            except OSError as error:  # not serving yet (or gone: then say so)
                if self._launcher.poll() is not None:
                    raise SystemExit(f'{self.label}: the system stopped; see {self.log}') from error
                continue
            yield state

    def __exit__(self, *exc) -> None:
        self._launcher.send_signal(signal.SIGINT)
        self.exit_code = self._launcher.wait(120)

"""Two hosts on one machine: Linux network namespaces joined by a veth pair.

Each namespace has its own loopback and one end of the link with an address on a /24 of
its own, so DDS between them must discover and deliver over the link, as between machines
(ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET; ROS_STATIC_PEERS names the other end, so discovery
does not depend on multicast). Used by test_across_hosts.py and bench.fleet; needs root.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys


class LinkError(RuntimeError):
    """The namespaces or the link could not be made (no privilege, no veth support)."""


def unavailable() -> str:
    """Why network namespaces cannot be made here (empty: they can)."""
    if sys.platform != 'linux':
        return 'network namespaces are Linux only'
    if os.geteuid() != 0:
        return 'creating network namespaces needs root'
    if shutil.which('ip') is None:
        return "the `ip` command (iproute2) is missing"
    return ''


class Link:
    """Two network namespaces joined by a veth pair; removed again by close()."""

    def __init__(self, tag: str, subnet: str) -> None:
        self.names = (f'ami_{tag}_l', f'ami_{tag}_r')
        self.devices = (f'ami{tag}l', f'ami{tag}r')
        self.addresses = (f'{subnet}.1', f'{subnet}.2')
        self._made: list[str] = []
        try:
            for name in self.names:
                self._ip('netns', 'add', name)
                self._made.append(name)
            self._ip('link', 'add', self.devices[0], 'type', 'veth', 'peer', 'name',
                     self.devices[1])
            for name, device, address in zip(self.names, self.devices, self.addresses):
                self._ip('link', 'set', device, 'netns', name)
                self._ip('-n', name, 'addr', 'add', f'{address}/24', 'dev', device)
                self._ip('-n', name, 'link', 'set', 'lo', 'up')
                self._ip('-n', name, 'link', 'set', device, 'up')
        except subprocess.CalledProcessError as error:
            self.close()
            raise LinkError(f'cannot make network namespaces here: {error.stderr.strip()}') \
                from error

    @staticmethod
    def _ip(*args: str) -> str:
        return subprocess.run(['ip', *args], check=True, capture_output=True, text=True).stdout

    def command(self, side: int, *command: str) -> list[str]:
        return ['ip', 'netns', 'exec', self.names[side], *command]

    def env(self, side: int) -> dict[str, str]:
        return {**os.environ, 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET',
                'ROS_STATIC_PEERS': self.addresses[1 - side]}

    def bytes_moved(self, side: int) -> tuple[int, int]:
        """(received, sent) on this side's end of the link."""
        stats = f'/sys/class/net/{self.devices[side]}/statistics'
        read = lambda what: int(subprocess.run(  # noqa: E731
            self.command(side, 'cat', f'{stats}/{what}_bytes'), check=True,
            capture_output=True, text=True).stdout)
        return read('rx'), read('tx')

    def close(self) -> None:
        for name in self._made:  # the veth pair goes with its namespaces
            subprocess.run(['ip', 'netns', 'del', name], capture_output=True)
        self._made.clear()



"""Receives VRChat OSC over real UDP and applies it to the world.

One receiving thread handles datagrams in arrival order (order matters: `Jump 1, Jump 0, Jump 1`
is two jumps). Unknown addresses and bad values are counted and logged once per address; a
sender can never crash the world.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from ami_nodes.world.sim import World

log = logging.getLogger(__name__)


class OscInputServer:
    """python-osc UDP server in a thread; applies each message to `world` while holding `lock`."""

    def __init__(self, world: World, lock: threading.Lock, host: str = '127.0.0.1', port: int = 9000) -> None:
        self._world = world
        self._lock = lock
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._on_message)
        self._server = BlockingOSCUDPServer((host, port), dispatcher)   # binds now: OSError if taken
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={'poll_interval': 0.1}, name='osc-input', daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound; the port is the real one when 0 was asked for."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop receiving and release the port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def counts(self) -> dict[str, int]:
        """Messages received per address, valid or not."""
        with self._counts_lock:
            return dict(self._counts)

    def rejected(self) -> dict[str, int]:
        """Messages per address that the world refused (unknown address, bad value or arity)."""
        with self._counts_lock:
            return dict(self._rejected)

    def _on_message(self, address: str, *args: Any) -> None:
        with self._counts_lock:
            self._counts[address] += 1
        try:
            if len(args) != 1:
                raise ValueError(f'{address} carries {len(args)} arguments; VRChat inputs take exactly one')
            with self._lock:
                self._world.apply_input(address, args[0])
        except ValueError as error:
            with self._counts_lock:
                self._rejected[address] += 1
                first = self._rejected[address] == 1
            if first:
                log.warning('ignoring OSC input (logged once per address): %s', error)

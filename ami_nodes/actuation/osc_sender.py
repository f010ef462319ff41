"""Send OSC messages over UDP, reporting (not raising) a host that cannot be reached."""
from __future__ import annotations

import socket

from pythonosc.osc_message_builder import OscMessageBuilder

from ami_nodes.actuation.vrchat_osc import OscValue


def build_datagram(address: str, value: OscValue | bool) -> bytes:
    """One OSC message: ints stay ints (VRChat buttons), floats stay floats (axes), bools are
    OSC's T/F (VRChat's bool avatar parameters)."""
    builder = OscMessageBuilder(address=address)
    if isinstance(value, bool):
        builder.add_arg(value)
    else:
        builder.add_arg(value, OscMessageBuilder.ARG_TYPE_INT if isinstance(value, int)
                        else OscMessageBuilder.ARG_TYPE_FLOAT)
    return builder.build().dgram


class OscSender:
    """A UDP socket to one OSC host; the address is resolved once and again after errors."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._address: tuple | None = None
        self._socket: socket.socket | None = None
        self.sent = 0
        self.errors = 0
        self.last_error = ''
        self.healthy = True

    def send(self, messages: list[tuple[str, OscValue | bool]]) -> list[tuple[str, OscValue | bool]]:
        """Send each message; return those that left. Failures are counted in `last_error`."""
        delivered = []
        for address, value in messages:
            try:
                self._ensure_socket().sendto(build_datagram(address, value), self._address)
            except OSError as error:
                self._fail(error)
                break
            delivered.append((address, value))
            self.sent += 1
            self.healthy = True
        return delivered

    def _ensure_socket(self) -> socket.socket:
        if self._socket is None:
            try:
                family, _, _, _, address = socket.getaddrinfo(
                    self.host, self.port, type=socket.SOCK_DGRAM)[0]
            except socket.gaierror as error:
                raise OSError(f'cannot resolve OSC host {self.host!r} ({error}): check the '
                              f'host parameter') from error
            self._socket = socket.socket(family, socket.SOCK_DGRAM)
            self._address = address
        return self._socket

    def _fail(self, error: OSError) -> None:
        self.errors += 1
        self.healthy = False
        self.last_error = (f'OSC to {self.host}:{self.port} failed: {error}. Is VRChat (or '
                           f'ami_world) running with OSC enabled on that port?')
        if self._socket is not None:
            self._socket.close()
        self._socket = None

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

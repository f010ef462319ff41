"""VRChat's OSC output: avatar parameters arriving over UDP (9001), read as untrusted input.

VRChat (and the built-in world's target) send `/avatar/parameters/<name> <bool|int|float>`.
Every datagram is parsed here, outside any ROS callback; anything malformed (not OSC, a bundle
that does not parse, no or several arguments, a string, a non-finite number) is counted and
refused, never raised. The node that owns the listener turns accepted values into messages.
"""
from __future__ import annotations

import math
import socket
import threading
from collections.abc import Callable

from pythonosc.osc_packet import OscPacket

AVATAR_PARAMETER_PREFIX = '/avatar/parameters/'
#: The built-in world's touch parameter, and the bridge's default reward parameter.
TOUCH_PARAMETER = 'TargetTouched'
#: VRChat's built-in parameters of the avatar's own motion, in Unity's frame (left-handed, Y up):
#: VelocityZ forward and VelocityX rightward in m/s, AngularY in degrees/s, positive turning right.
AVATAR_VELOCITY_PARAMETERS = ('VelocityZ', 'VelocityX', 'AngularY')
_MAX_DATAGRAM = 65535


def velocity_parameters(forward: float, left: float, yaw_rate: float) -> dict[str, float]:
    """A body-frame velocity (REP 103: m/s forward and left, rad/s counter-clockwise) as the
    values of AVATAR_VELOCITY_PARAMETERS."""
    return {'VelocityZ': forward, 'VelocityX': -left, 'AngularY': -math.degrees(yaw_rate)}


def body_velocity(values: dict[str, float]) -> tuple[float, float, float]:
    """(forward, left, yaw_rate) in REP 103 units from the values of AVATAR_VELOCITY_PARAMETERS (a
    missing one reads as 0, as VRChat sends a parameter only when it changes)."""
    return (values.get('VelocityZ', 0.0), -values.get('VelocityX', 0.0),
            -math.radians(values.get('AngularY', 0.0)))


class RefusedPacket(ValueError):
    """A datagram that is not a well-formed avatar parameter message."""


def parse_avatar_parameters(datagram: bytes) -> list[tuple[str, float]]:
    """(parameter name, value as float) for each message in an OSC packet; RefusedPacket when
    any part is malformed. Bools read as 1.0/0.0. Other OSC addresses are skipped."""
    try:
        messages = OscPacket(datagram).messages
    except Exception as error:  # noqa: BLE001 - any parser failure is a refused packet
        raise RefusedPacket(f'not an OSC packet ({type(error).__name__}: {error})') from None
    values = []
    for timed in messages:
        address, args = timed.message.address, timed.message.params
        if not address.startswith(AVATAR_PARAMETER_PREFIX):
            continue
        if len(args) != 1:
            raise RefusedPacket(f'{address} carries {len(args)} arguments; a parameter has one')
        value = args[0]
        if not isinstance(value, (bool, int, float)):
            raise RefusedPacket(f'{address} carries a {type(value).__name__}, not a number')
        if not math.isfinite(float(value)):
            raise RefusedPacket(f'{address} carries {value}; only finite values are accepted')
        values.append((address[len(AVATAR_PARAMETER_PREFIX):], float(value)))
    return values


class AvatarParameterListener:
    """A UDP socket and its receiving thread; calls `on_value(name, value)` per accepted
    parameter and `on_refused(reason)` per refused datagram. Binds in the constructor."""

    def __init__(self, host: str, port: int, on_value: Callable[[str, float], None],
                 on_refused: Callable[[str], None]) -> None:
        self._on_value = on_value
        self._on_refused = on_refused
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, port))
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self.received = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._receive, name='avatar-parameters', daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self._socket.recv(_MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                return                       # closed
            self.received += 1
            try:
                values = parse_avatar_parameters(datagram)
            except RefusedPacket as error:
                self.refused += 1
                self._on_refused(str(error))
                continue
            for name, value in values:
                self._on_value(name, value)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._socket.close()

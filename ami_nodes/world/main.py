"""`ami_world`: the built-in world as a process: OSC in on UDP, MJPEG and JSON out on HTTP.

Stops cleanly on SIGINT/SIGTERM (exit 0) and prints one `AMI_WORLD_SUMMARY {json}` line, so a
test or a launcher can check what the world saw. A port already in use exits with code 2.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ami_nodes.actuation.avatar_parameters import TOUCH_PARAMETER
from ami_nodes.world.layout import LAYOUTS
from ami_nodes.world.osc_server import OscInputServer
from ami_nodes.world.runner import WorldRunner
from ami_nodes.world.sim import World, WorldConfig
from ami_nodes.world.stream_server import StreamServer
from ami_nodes.world.target import TouchReporter, VelocityReporter

EXIT_BIND_ERROR = 2
SUMMARY_PREFIX = 'AMI_WORLD_SUMMARY'


def parse_bool(text: str) -> bool:
    """'true'/'false' in any case, as YAML writes them and as world_arguments passes them on."""
    if text.lower() not in ('true', 'false'):
        raise argparse.ArgumentTypeError(f'expected true or false, got {text!r}')
    return text.lower() == 'true'


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = WorldConfig()
    parser = argparse.ArgumentParser(prog='ami_world', description=__doc__.split('\n')[0])
    parser.add_argument('--host', default='127.0.0.1', help='address for both servers')
    parser.add_argument('--http-port', type=int, default=8090, help='MJPEG/JSON port (0 = any free)')
    parser.add_argument('--osc-port', type=int, default=9000, help='OSC UDP port, as VRChat (0 = any free)')
    parser.add_argument('--fps', type=float, default=defaults.fps)
    parser.add_argument('--seed', type=int, default=defaults.seed)
    parser.add_argument('--layout', choices=LAYOUTS, default=defaults.layout,
                        help='map generator: the small classic room or a multi-room map')
    parser.add_argument('--noisy-tv', type=parse_bool, default=defaults.noisy_tv, metavar='{true,false}',
                        help='add a wall patch whose look is random every frame')
    parser.add_argument('--width', type=int, default=defaults.width)
    parser.add_argument('--height', type=int, default=defaults.height)
    parser.add_argument('--duration', type=float, default=0.0, help='seconds to run; 0 = until a signal')
    parser.add_argument('--trajectory-log', metavar='PATH', help='write one JSON line per tick here')
    parser.add_argument('--target', type=parse_bool, default=defaults.target, metavar='{true,false}',
                        help='true: a target that moves when touched; each touch goes out as an '
                             'OSC avatar parameter, as VRChat does')
    parser.add_argument('--targets', type=int, default=defaults.targets,
                        help='how many targets at once with --target true (more: a denser task)')
    parser.add_argument('--velocity-parameters', type=parse_bool, default=False, metavar='{true,false}',
                        help="true: send the agent's own velocity as VRChat's VelocityZ, VelocityX and "
                             'AngularY avatar parameters (odometry for a place-novelty explorer)')
    parser.add_argument('--avatar-osc-host', default='127.0.0.1', help='where touches and velocities are sent')
    parser.add_argument('--avatar-osc-port', type=int, default=9001,
                        help="UDP port of touches (VRChat's OSC output port)")
    parser.add_argument('--target-parameter', default=TOUCH_PARAMETER,
                        help='avatar parameter name of a touch: /avatar/parameters/<name>')
    args = parser.parse_args(argv)
    if args.fps <= 0:
        parser.error('--fps must be positive')
    if args.targets < 1:
        parser.error('--targets must be at least 1')
    return args


def summary(world: World, lock: threading.Lock, osc: OscInputServer, stream: StreamServer,
            runner: WorldRunner) -> dict[str, Any]:
    with lock:
        held, coverage = world.held_inputs(), world.coverage()
    return {'held_inputs': held, 'datagrams': osc.counts(), 'rejected': osc.rejected(),
            'coverage': coverage, 'frames': runner.frame_index + 1, 'frames_served': stream.frames_served,
            'late_ticks': runner.late_ticks, 'touches': world.touches}


def bind_failed(what: str, error: OSError, hint: str) -> int:
    """Say which port could not be had and what to do about it; the exit code for that case."""
    print(f'ami_world: cannot {what}: {error.strerror or error} ({hint})', file=sys.stderr)
    return EXIT_BIND_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[ami_world] %(levelname)s %(message)s')
    config = WorldConfig(seed=args.seed, layout=args.layout, noisy_tv=args.noisy_tv,
                         width=args.width, height=args.height, fps=args.fps, target=args.target,
                         targets=args.targets)
    world = World(config)
    lock = threading.Lock()
    try:
        osc = OscInputServer(world, lock, args.host, args.osc_port)
    except OSError as error:
        return bind_failed(f'listen for OSC on udp://{args.host}:{args.osc_port}', error,
                           'is VRChat or another ami_world running? pick another --osc-port')
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(osc.stop)
        try:
            stream = StreamServer(lambda: runner.state(), args.host, args.http_port)
        except OSError as error:
            return bind_failed(f'serve HTTP on {args.host}:{args.http_port}', error, 'pick another --http-port')
        cleanup.callback(stream.stop)
        log_file = open(args.trajectory_log, 'w', encoding='utf-8') if args.trajectory_log else None
        if log_file is not None:
            cleanup.enter_context(log_file)
        reporters: list[Callable[[dict], None]] = []
        if args.target:
            touches = TouchReporter(args.avatar_osc_host, args.avatar_osc_port, args.target_parameter)
            cleanup.callback(touches.close)
            reporters.append(lambda state: touches.update(state['touches']))
        if args.velocity_parameters:
            velocities = VelocityReporter(args.avatar_osc_host, args.avatar_osc_port)
            cleanup.callback(velocities.close)
            reporters.append(lambda state: velocities.update(state['velocity']))

        def report(state: dict) -> None:
            for reporter in reporters:
                reporter(state)

        runner = WorldRunner(world, lock, stream.publish, log_file, report if reporters else None)
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        runner.tick()                      # a frame is ready before anyone is told to connect
        osc.start()
        stream.start()
        print(f'ami_world: streaming {stream.url()} (state {stream.url("/state")}), '
              f'OSC on udp://{osc.address[0]}:{osc.address[1]}, seed {args.seed}, layout {args.layout}'
              f'{" with a noisy TV" if args.noisy_tv else ""}, '
              f'{args.width}x{args.height} at {args.fps:g} fps'
              + (f', {args.targets} target(s) on (touches to udp://{args.avatar_osc_host}:{args.avatar_osc_port})'
                 if args.target else ''),
              flush=True)
        runner.run(stop, args.duration)
        osc.stop()                         # no input may change the world after this point
        result = summary(world, lock, osc, stream, runner)
    print(f'{SUMMARY_PREFIX} {json.dumps(result, sort_keys=True)}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

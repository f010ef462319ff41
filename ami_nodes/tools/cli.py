"""ami: status, pause, resume, save and record for a running system; replay a recording.

The pip install has no `ros2 service call` or `ros2 bag`, so this offers the same through
rclpy. Use the same ROS_DOMAIN_ID as the running system, and its --namespace and --robots.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import rclpy
from lifecycle_msgs.msg import Transition
from rclpy.executors import SingleThreadedExecutor

from ami_nodes import system
from ami_nodes.ros import services
from ami_nodes.tools.control import Control
from ami_nodes.tools.status import StatusCollector, format_screen

WHAT = {'acting': ('acting',), 'learning': ('learning',), 'all': ('acting', 'learning')}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='ami', description=__doc__.splitlines()[0])
    parser.add_argument('--namespace', default='', help='the system\'s namespace (ami_launch '
                        '--namespace); empty: the root')
    parser.add_argument('--robots', type=int, default=1,
                        help='robots of the fleet (ami_launch --robots); 1: a single system')
    commands = parser.add_subparsers(dest='command', required=True)
    status = commands.add_parser('status', help='one screen: every node, rates, latency, losses')
    status.add_argument('--wait', type=float, default=services.DISCOVERY_TIMEOUT_S,
                        help='most seconds to wait for every node\'s /diagnostics (once a '
                             'second); the screen comes as soon as all have reported')
    for name, verb in (('pause', 'pause'), ('resume', 'resume')):
        sub = commands.add_parser(name, help=f'{verb} acting (inputs released), learning, or both '
                                  '(lifecycle deactivate/activate)')
        sub.add_argument('what', nargs='?', choices=sorted(WHAT), default='all')
    save = commands.add_parser('save', help='take a checkpoint now and wait until it is whole')
    save.add_argument('--timeout', type=float, default=60.0)
    record = commands.add_parser('record', help='record topics to a rosbag2 MCAP folder '
                                 '(ros2 bag info/play and Foxglove open it)')
    record.add_argument('topics', nargs='*', help='topics to record (none: every topic)')
    record.add_argument('-o', '--output', type=Path, required=True,
                        help='new folder for metadata.yaml and the .mcap file')
    record.add_argument('--duration', type=float, default=0.0,
                        help='stop this many seconds after the first message (0: at Ctrl-C)')
    replay = commands.add_parser('replay', help='pre-train the encoder offline on a '
                                 "recording's image_raw; writes OUT/encoder.safetensors")
    replay.add_argument('recording', type=Path, help='a recording folder or .mcap file')
    replay.add_argument('-o', '--output', type=Path, required=True)
    replay.add_argument('--epochs', type=int, default=1)
    replay.add_argument('--topic', default='/image_raw', help='the image topic to train on')
    replay.add_argument('--device', default='cpu', help='torch device (cpu, cuda, auto)')
    replay.add_argument('--torch-threads', type=int, default=1)
    return parser.parse_args(argv)


def run_record(args: argparse.Namespace) -> int:
    from ami_nodes.tools.record import record
    rclpy.init()
    node = rclpy.create_node('ami_record')
    try:
        counts = record(node, lambda t: rclpy.spin_once(node, timeout_sec=t), args.output,
                        args.topics or None, args.duration)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    print(json.dumps({'output': str(args.output), 'messages': counts}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == 'record':
        return run_record(args)
    if args.command == 'replay':
        from ami_nodes.tools.replay import pretrain
        print(json.dumps(pretrain(args.recording, args.output, args.epochs, args.topic,
                                  device=args.device, torch_threads=args.torch_threads),
                         indent=2))
        return 0
    rclpy.init()
    node = rclpy.create_node('ami_cli')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    collector = StatusCollector(node) if args.command == 'status' else None
    robots = system.robot_namespaces(args.namespace, args.robots)
    control = Control(node, args.namespace, robots)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        if args.command == 'status':
            expected = {system.join(args.namespace, system.LEARNER)} | {
                system.join(robot, spec.name) for robot in robots for spec in system.NODES
                if spec.name != system.LEARNER}
            deadline = time.monotonic() + args.wait
            while time.monotonic() < deadline and \
                    not expected <= set(collector.snapshot(args.namespace)):
                time.sleep(0.1)
            print(format_screen(collector.snapshot(args.namespace)))
            return 0 if collector.snapshot(args.namespace) else 1
        if args.command == 'save':
            ok, answer = control.save(args.timeout)
            print(f'checkpoint saved: {answer}' if ok else answer)
            return 0 if ok else 1
        if args.command == 'pause':
            answers = control.transition(WHAT[args.what], Transition.TRANSITION_DEACTIVATE)
        else:  # activate, and undo a pause made through the SetBool services too
            answers = control.transition(WHAT[args.what], Transition.TRANSITION_ACTIVATE)
            answers += control.set_enabled(WHAT[args.what], True)
        print('\n'.join(answers))
        return 0 if all(not any(word in a for word in ('not available', 'no answer', 'failed'))
                        for a in answers) else 1
    finally:
        executor.shutdown()
        spinner.join(timeout=5.0)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())

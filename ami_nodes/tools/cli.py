"""ami: status, pause, resume and save for a running system, from another terminal.

The pip install has no `ros2 service call`, so this offers the same through rclpy. Use the
same ROS_DOMAIN_ID as the running system, and its --namespace and --robots.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor

from ami_nodes import system
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
    status.add_argument('--wait', type=float, default=6.0,
                        help='most seconds to wait for every node\'s /diagnostics (once a second)')
    for name, verb in (('pause', 'pause'), ('resume', 'resume')):
        sub = commands.add_parser(name, help=f'{verb} acting (inputs released), learning, or both')
        sub.add_argument('what', nargs='?', choices=sorted(WHAT), default='all')
    save = commands.add_parser('save', help='take a checkpoint now and wait until it is whole')
    save.add_argument('--timeout', type=float, default=60.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
        answers = control.set_enabled(WHAT[args.what], args.command == 'resume')
        print('\n'.join(answers))
        return 0 if all('not available' not in a and 'no answer' not in a for a in answers) else 1
    finally:
        executor.shutdown()
        spinner.join(timeout=5.0)
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())

"""Weight sync: learner publish -> policy applied, by blob size, with and without the Fast DDS
large-message profile. Runs policy_node alone (as test_policy_node.py does) and plays the
learner from this process, feeding features so the actor ticks.

One process per profile setting, because Fast DDS reads FASTDDS_DEFAULT_PROFILES_FILE once:

    python -m bench.weight_sync --profile on --domain 160 --out /tmp/on.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ami_nodes.action_space import ACTION_DIMS
from ami_nodes.learning.actor_critic import ActorCritic
from ami_nodes.persistence.weights import decode_weights, encode_weights
from ami_nodes.ros.messages import POLICY_MODEL
from bench.machine import REPO
from bench.stats import summary

FEATURE_DIM = 64
FEED_HZ = 100.0  # weights are swapped in between ticks: a fast tick keeps that wait <= 10 ms
TARGET_BYTES = (100_000, 300_000, 1_000_000, 3_000_000, 10_000_000)


def param_count(hidden: int) -> int:
    """ActorCritic parameters: two MLPs feature -> hidden -> hidden -> (logits | value)."""
    def mlp(out: int) -> int:
        return FEATURE_DIM * hidden + hidden + hidden * hidden + hidden + hidden * out + out
    return mlp(sum(ACTION_DIMS)) + mlp(1)


def hidden_for(target_bytes: int) -> int:
    """The hidden size whose float32 weights come closest to `target_bytes`."""
    return min(range(1, 4096), key=lambda h: abs(4 * param_count(h) - target_bytes))


class Learner:
    """This process's stand-in for learner_node: a node that publishes weights and features."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from sensor_msgs.msg import Image
        from std_msgs.msg import Float32, Int64, UInt8MultiArray

        from ami_nodes.ros import qos
        rclpy.init(domain_id=domain_id)
        self.rclpy = rclpy
        self.node = rclpy.create_node('bench_weight_sync')
        self.versions: list[tuple[float, int]] = []
        self.latency_ms: list[tuple[float, float]] = []
        self.features = self.node.create_publisher(Image, 'features', qos.STREAM)
        self.weights = self.node.create_publisher(UInt8MultiArray, 'policy_weights', qos.LATCHED)
        self.node.create_subscription(Int64, '/policy_node/version', lambda m: self.versions.append(
            (time.monotonic(), m.data)), qos.LATCHED)
        self.node.create_subscription(Float32, '/policy_node/latency_ms', lambda m: self.latency_ms
                                      .append((time.monotonic(), m.data)), qos.MONITOR)
        self._next_feed = time.monotonic()
        self._rng = np.random.default_rng(0)

    def spin(self, seconds: float, until=lambda: False) -> bool:
        """Spin and feed features at FEED_HZ for up to `seconds`; True when `until()` held."""
        from std_msgs.msg import Header

        from ami_nodes.ros.messages import features_to_msg, ns_to_stamp
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if time.monotonic() >= self._next_feed:
                self._next_feed += 1.0 / FEED_HZ
                header = Header(frame_id='camera', stamp=ns_to_stamp(time.time_ns()))
                self.features.publish(features_to_msg(self._rng.normal(size=FEATURE_DIM), header))
            self.rclpy.spin_once(self.node, timeout_sec=max(0.0, min(
                self._next_feed - time.monotonic(), 0.005)))
            if until():
                return True
        return until()

    def publish(self, blob: bytes) -> float:
        from ami_nodes.ros.messages import blob_to_msg
        msg = blob_to_msg(blob, 'bench')
        start = time.monotonic()
        self.weights.publish(msg)
        return start

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.shutdown()


def apply_in_process_ms(state: dict, repeats: int = 3) -> float:
    """What policy_node's worker does with a blob, without ROS: decode and check it, build a
    fresh model, load the tensors. Publish->applied minus this is roughly the transport."""
    hidden = state['actor.0.weight'].shape[0]
    blob = encode_weights(state, 1, POLICY_MODEL)
    expected = {name: (tuple(t.shape), t.dtype) for name, t in state.items()}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        packet = decode_weights(blob, expected=expected, model=POLICY_MODEL)
        ActorCritic(FEATURE_DIM, ACTION_DIMS, hidden).eval().load_state_dict(packet.tensors)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def start_policy(hidden: int, env: dict[str, str], log: Path,
                 prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    """policy_node, run through `prefix` (e.g. `ip netns exec NAME`: on another "host")."""
    command = [*prefix, sys.executable, '-m', 'ami_nodes.nodes.policy_node', '--ros-args',
               '-r', '__node:=policy_node', '-p', f'hidden_size:={hidden}',
               '-p', f'feature_dim:={FEATURE_DIM}']
    return subprocess.Popen(command, stdout=open(log, 'w'), stderr=subprocess.STDOUT, cwd=REPO,
                            env=env)


def measure_size(learner: Learner, target: int, repeats: int, tick_s: float, env: dict,
                 log: Path, prefix: tuple[str, ...] = ()) -> dict:
    hidden = hidden_for(target)
    state = ActorCritic(FEATURE_DIM, ACTION_DIMS, hidden).state_dict()
    learner.versions.clear()  # what the previous size's policy_node reported
    learner.latency_ms.clear()
    policy = start_policy(hidden, env, log, prefix)
    try:
        if not learner.spin(60.0, lambda: learner.features.get_subscription_count() > 0
                            and any(v == -1 for _, v in learner.versions)):
            return {'hidden_size': hidden, 'error': 'policy_node did not come up'}
        learner.spin(1.0)
        delays, lost = [], 0
        for version in range(1, repeats + 1):
            sent = learner.publish(encode_weights(state, version, POLICY_MODEL))
            if learner.spin(15.0, lambda v0=version: any(v == v0 for _, v in learner.versions)):
                arrived = next(t for t, v in learner.versions if v == version)
                delays.append((arrived - sent) * 1e3)
            else:
                lost += 1
            learner.spin(0.2)
        ticks = tick_times(learner, state, repeats + 1, tick_s)
    finally:
        policy.terminate()
        policy.wait(15)
    return {'hidden_size': hidden, 'blob_bytes': len(encode_weights(state, 0, POLICY_MODEL)),
            'apply_in_process_ms': apply_in_process_ms(state),
            'publish_to_applied_ms':
            summary(delays), 'not_applied_within_15s': lost, **ticks}


def tick_times(learner: Learner, state: dict, first_version: int, seconds: float) -> dict:
    """policy_node's features -> cmd_vel latency while no weights arrive, then while a new
    blob arrives every 0.5 s: does decoding on the worker thread disturb the actor?"""
    quiet_start = time.monotonic()
    learner.spin(seconds)
    busy_start = time.monotonic()
    version = first_version
    while time.monotonic() - busy_start < seconds:
        learner.publish(encode_weights(state, version, POLICY_MODEL))
        version += 1
        learner.spin(0.5)
    end = time.monotonic()
    return {'tick_latency_quiet_ms': summary(v for t, v in learner.latency_ms
                                             if quiet_start <= t < busy_start),
            'tick_latency_weights_arriving_ms': summary(v for t, v in learner.latency_ms
                                                        if busy_start <= t < end)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', choices=('on', 'off'), required=True)
    parser.add_argument('--domain', type=int, required=True)
    parser.add_argument('--repeats', type=int, default=8)
    parser.add_argument('--tick-seconds', type=float, default=4.0)
    parser.add_argument('--sizes', type=int, nargs='+', default=list(TARGET_BYTES))
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--policy-netns', default='',
                        help='run policy_node in this network namespace (bench.fleet)')
    parser.add_argument('--policy-peer', default='',
                        help="this process's address, the policy's ROS_STATIC_PEERS")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as policy_node runs; more threads thrash on 2 shared cores
    os.environ.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    if args.profile == 'on':
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(REPO / 'config' / 'fastdds_large_messages.xml')
    os.environ['ROS_DOMAIN_ID'] = str(args.domain)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    prefix = ('ip', 'netns', 'exec', args.policy_netns) if args.policy_netns else ()
    policy_env = {**os.environ, **({'ROS_STATIC_PEERS': args.policy_peer}
                                   if args.policy_peer else {})}
    learner = Learner(args.domain)
    try:
        rows = {str(size): measure_size(learner, size, args.repeats, args.tick_seconds,
                                        policy_env, args.out.with_suffix(f'.{size}.log'), prefix)
                for size in args.sizes}
    finally:
        learner.close()
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == '__main__':
    main()


def run(quick: bool, domain_ids: list[int], workdir: Path) -> dict:
    """Both profile settings, each in its own process and ROS domain."""
    repeats, tick_s = (2, 1.0) if quick else (8, 4.0)
    sizes = (100_000, 10_000_000) if quick else TARGET_BYTES
    out: dict = {'how': f'policy_node alone (hidden_size chosen per size), features fed at '
                        f'{FEED_HZ:g} Hz; {repeats} blobs per size published on policy_weights '
                        f'(LATCHED), time until /policy_node/version reports each (includes '
                        f'decode + load on its worker thread and the wait for the next tick, '
                        f'<= {1e3 / FEED_HZ:g} ms); apply_in_process = the same decode + new '
                        f'model + load_state_dict without ROS (median of 3). Tick latency = policy_node features -> '
                        f'cmd_vel published, {tick_s:g} s quiet vs {tick_s:g} s with a blob '
                        f'every 0.5 s. Profile on = FASTDDS_DEFAULT_PROFILES_FILE='
                        f'config/fastdds_large_messages.xml in both processes; off = unset.'}
    for profile, domain in zip(('on', 'off'), domain_ids):
        target = workdir / f'weight_sync_{profile}.json'
        subprocess.run([sys.executable, '-m', 'bench.weight_sync', '--profile', profile,
                        '--domain', str(domain), '--repeats', str(repeats),
                        '--tick-seconds', str(tick_s), '--sizes', *map(str, sizes),
                        '--out', str(target)], cwd=REPO, check=True, timeout=900)
        out[f'profile_{profile}'] = json.loads(target.read_text())
    return out

"""Novelty of places (issue 9): dead reckoning, the count bonus, the bandit it pays, and the
world's velocity reaching `measured_velocity` over real UDP and real rclpy."""
import json
import math
import socket

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from ros_harness import diagnostic_values, rejected, start_node, stop
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ami_nodes.action_space import VelocityLimits
from ami_nodes.actuation.avatar_parameters import body_velocity, velocity_parameters
from ami_nodes.eval.perception_probe import drive
from ami_nodes.learning.actor import Actor
from ami_nodes.learning.place_novelty import BLIND_HOLDS, PlaceBandit, PlaceNovelty
from ami_nodes.odometry import DeadReckoning
from ami_nodes.ros import qos
from ami_nodes.ros.messages import features_to_msg, ns_to_stamp
from ami_nodes.tools.launch_config import free_port
from ami_nodes.world.sim import World, WorldConfig
from ami_nodes.world.target import VelocityReporter

RUN_FORWARD = (1, 0, 0, 0, 1)     # move forward, no strafe, no turn, no jump, run
TURN_LEFT = (0, 0, 1, 0, 0)


def test_dead_reckoning_closes_a_square_and_follows_an_arc():
    odometry = DeadReckoning()
    for _ in range(4):
        for _ in range(20):
            odometry.step(1.0, 0.0, 0.0, 0.05)            # 1 m ahead
        for _ in range(20):
            odometry.step(0.0, 0.0, math.pi / 2, 0.05)    # a quarter turn left on the spot
    assert abs(odometry.x) < 1e-9 and abs(odometry.y) < 1e-9 and abs(odometry.yaw) < 1e-9
    arc = DeadReckoning()
    for _ in range(100):                                  # half a circle of radius 1, counter-clockwise
        arc.step(math.pi / 5, 0.0, math.pi / 5, 0.05)
    assert arc.x == pytest.approx(0.0, abs=1e-3) and arc.y == pytest.approx(2.0, abs=1e-3)
    with pytest.raises(ValueError):
        arc.step(float('nan'), 0.0, 0.0, 0.05)


def test_a_revisited_place_pays_less_than_a_new_one_and_staying_pays_nothing():
    places = PlaceNovelty(cell_size=1.0, window=4)
    assert places.observe(0.5, 0.5) == 1.0               # a new cell
    assert places.observe(0.9, 0.1) == 0.0               # still in it
    assert places.observe(1.5, 0.5) == 1.0
    assert places.observe(0.5, 0.5) == pytest.approx(1 / math.sqrt(2))   # back: the second entry
    assert places.observe(1.5, 0.5) == pytest.approx(1 / math.sqrt(2))
    assert places.observe(0.5, 0.5) == pytest.approx(1 / math.sqrt(2))   # the first entry left the window
    assert sum(places.counts.values()) == 4


def test_turning_jumping_and_a_noisy_view_pay_nothing_only_new_places_do():
    """The noisy-TV property: spinning on the spot while the view changes at random (what
    every feature-space reward pays) earns nothing; walking into new cells earns a bonus."""
    rng = np.random.default_rng(0)
    odometry, places = DeadReckoning(), PlaceNovelty()
    places.observe(odometry.x, odometry.y)
    staring = 0.0
    for _ in range(2000):                                 # 100 s of random turning and hopping
        odometry.step(0.0, 0.0, float(rng.uniform(-2.0, 2.0)), 0.05)
        staring += places.observe(odometry.x, odometry.y)
    walking = 0.0
    for _ in range(200):                                  # 10 s of walking at 1.5 m/s
        odometry.step(1.5, 0.0, 0.0, 0.05)
        walking += places.observe(odometry.x, odometry.y)
    assert staring == 0.0
    assert walking >= 14.0                                # at least one new cell per metre walked


def test_world_velocity_is_its_motion_in_its_own_frame_after_collisions():
    world = World(WorldConfig(seed=3, layout='rooms'))
    limits = VelocityLimits()
    drive(world, RUN_FORWARD, limits)
    speeds = []
    for _ in range(200):                                  # runs into a wall sooner or later
        before = world.pose
        world.step(0.05)
        velocity = world.velocity
        moved = math.hypot(world.pose.x - before.x, world.pose.y - before.y) / 0.05
        assert math.hypot(velocity.forward, velocity.left) == pytest.approx(moved, abs=1e-9)
        speeds.append(velocity.forward)
    run_speed = world.config.walk_speed * world.config.run_multiplier
    assert max(speeds) == pytest.approx(run_speed) and min(speeds) < 0.1 * run_speed   # stopped by a wall
    drive(world, TURN_LEFT, limits)
    world.step(0.05)
    assert world.velocity.yaw_rate == pytest.approx(math.radians(world.config.turn_rate_deg))
    assert body_velocity(velocity_parameters(*world.velocity)) == pytest.approx(tuple(world.velocity))


def test_the_bandit_learns_to_prefer_what_reaches_new_places():
    """On an open plane where running covers twice the ground, 300 holds are enough for the
    run head to settle on running, from the place bonus alone."""
    rng = np.random.default_rng(4)
    bandit, stamp_ns = PlaceBandit(rng), 0
    for _ in range(300):
        action = bandit.choose()
        speed = 0.0 if action[0] == 0 else 2.0 if action[4] else 1.0
        for _ in range(20):                                    # a one-second hold at 20 Hz
            stamp_ns += 50_000_000
            bandit.observe_velocity(speed, 0.0, 0.0, stamp_ns)
    assert bandit.holds == 299
    probabilities = bandit.probabilities()
    assert probabilities['run'][1] > 0.9 and probabilities['move'][0] < 0.05, probabilities
    restored = PlaceBandit(np.random.default_rng(0))
    restored.load_state_dict(json.loads(json.dumps(bandit.state_dict())))   # what a checkpoint keeps
    assert restored.holds == bandit.holds and restored.places.counts == bandit.places.counts
    assert all(np.array_equal(a, b) for a, b in zip(restored.bandit.means, bandit.bandit.means))


def test_held_bandit_decides_once_per_hold_and_is_paid_between_holds():
    actor = Actor(64, 16, 'held_bandit', seed=0, sticky_min_s=1.0, sticky_max_s=1.0)
    features = np.zeros(64, np.float32)
    fresh = []
    for tick in range(100):                                # 5 s at 20 Hz: holds of exactly 1 s
        stamp_ns = tick * 50_000_000
        actor.place_bandit.observe_velocity(2.0, 0.0, 0.0, stamp_ns)
        fresh.append(actor.decide(features, stamp_ns).fresh)
    assert sum(fresh) == 5 and actor.place_bandit.holds == 4
    assert actor.place_bandit.bandit.stats.count > 3.0     # four hold rewards folded in


def test_holds_without_odometry_are_counted_and_one_velocity_ends_the_count():
    """A robot whose odometry is not relayed never moves on its dead-reckoned map: the bandit
    counts the paid holds in a row that heard no velocity, so policy_node can say so."""
    bandit = PlaceBandit(np.random.default_rng(0))
    for _ in range(BLIND_HOLDS + 1):
        bandit.choose()
    assert bandit.holds_without_velocity == BLIND_HOLDS      # the first choice pays nothing
    bandit.observe_velocity(1.0, 0.0, 0.0, 50_000_000)
    bandit.choose()
    assert bandit.holds_without_velocity == 0
    bandit.choose()
    assert bandit.holds_without_velocity == 1


@pytest.mark.ros
def test_world_velocity_reaches_measured_velocity(watcher, tmp_path):
    velocities = watcher.subscribe(TwistStamped, 'measured_velocity', qos.STREAM)
    port = free_port(socket.SOCK_DGRAM)
    node = start_node('ami_nodes.nodes.osc_bridge_node', 'osc_bridge_node', {
        'port': free_port(socket.SOCK_DGRAM), 'velocity_parameters': True, 'reward_port': port},
        log=tmp_path / 'bridge.log')
    world = World(WorldConfig(seed=1))
    reporter = VelocityReporter('127.0.0.1', port)
    try:
        assert watcher.spin_until(lambda: watcher.node.count_publishers('/measured_velocity') > 0, 60.0)
        drive(world, (1, 0, 1, 0, 0), VelocityLimits())   # walk forward while turning left
        world.step(0.05)
        expected = world.velocity
        assert expected.forward > 0.5 and expected.yaw_rate > 0.5

        def arrived() -> bool:
            return any(m.twist.linear.x == pytest.approx(expected.forward, rel=1e-5)
                       and m.twist.angular.z == pytest.approx(expected.yaw_rate, rel=1e-5) for m in velocities)
        for _ in range(120):                                 # resend until the listener has it
            reporter.update({'forward': 0.0, 'left': 0.0, 'yaw_rate': 0.0})
            reporter.update(expected._asdict())
            if watcher.spin_until(arrived, 0.5):
                break
        assert watcher.spin_until(arrived, 10.0), [m.twist for m in velocities[-3:]]
        assert all(m.header.frame_id == 'base_link' for m in velocities)
        assert node.poll() is None
    finally:
        reporter.close()
        stop(node)


@pytest.mark.ros
def test_policy_node_held_bandit_is_paid_from_measured_velocity(watcher, tmp_path):
    """Features drive the holds, measured_velocity the dead reckoning: without it the node
    warns that the explorer is blind; with it the bandit is paid hold after hold and its
    window fills with places; a non-finite or absurd velocity is refused."""
    diagnostics = watcher.subscribe(DiagnosticArray, '/diagnostics')
    features_pub = watcher.node.create_publisher(Image, 'features', qos.STREAM)
    velocity_pub = watcher.node.create_publisher(TwistStamped, 'measured_velocity', qos.STREAM)
    log = tmp_path / 'policy.log'
    node = start_node('ami_nodes.nodes.policy_node', 'policy_node', {
        'action_mode': 'held_bandit', 'sticky_min_s': 0.25, 'sticky_max_s': 0.25}, log=log)

    def value(key: str) -> int:
        return max((int(float(v[key])) for v in diagnostic_values(diagnostics, 'policy_node') if key in v),
                   default=-1)
    try:
        assert watcher.spin_until(lambda: features_pub.get_subscription_count() > 0
                                  and velocity_pub.get_subscription_count() > 0, 60.0)

        def blind_warning() -> bool:
            return any(status.level == DiagnosticStatus.WARN and 'blind' in status.message
                       for array in diagnostics for status in array.status if status.name == 'policy_node')
        tick = 0
        for tick in range(2000):   # features only, no odometry: a bound on a hang, as below
            header = Header(frame_id='camera', stamp=ns_to_stamp(1_000_000_000 + tick * 50_000_000))
            features_pub.publish(features_to_msg(np.zeros(64, np.float32), header))
            watcher.spin_for(0.03)
            if blind_warning():
                break
        assert blind_warning() and value('holds_without_velocity') >= BLIND_HOLDS, log.read_text()
        for i in range(tick + 1, tick + 2000):   # a bound on a hang: it ends once the diagnostics show the payments
            header = Header(frame_id='camera', stamp=ns_to_stamp(1_000_000_000 + i * 50_000_000))
            velocity = TwistStamped(header=Header(frame_id='base_link', stamp=header.stamp))
            velocity.twist.linear.x = 2.0                       # 0.1 m per tick: a new cell every 10
            velocity_pub.publish(velocity)
            features_pub.publish(features_to_msg(np.zeros(64, np.float32), header))
            watcher.spin_for(0.03)
            if value('bandit_holds') >= 5 and value('places_in_window') >= 3:
                break
        assert value('bandit_holds') >= 5 and value('places_in_window') >= 3, log.read_text()
        paid = [v for v in diagnostic_values(diagnostics, 'policy_node') if int(v.get('places_in_window', 0)) >= 3]
        assert paid[0]['holds_without_velocity'] == '0', paid[0]   # odometry ended the blind count
        for speed in (float('nan'), 1e300):   # 1e300 m/s would send the dead-reckoned pose to inf
            count = value('rejected_inputs') + 1
            bad = TwistStamped()
            bad.twist.linear.x = speed
            for _ in range(40):   # best effort: send until one arrives
                velocity_pub.publish(bad)
                if watcher.spin_until(lambda n=count: rejected(diagnostics, 'policy_node', n, 'not finite'), 0.5):
                    break
            assert rejected(diagnostics, 'policy_node', count, 'not finite'), log.read_text()
        assert node.poll() is None
    finally:
        assert stop(node) == 0

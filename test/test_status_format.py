"""The status line and the `ami status` screen, for one system and for a fleet."""
from ami_nodes import system
from ami_nodes.tools.status import format_line, format_screen


def entry(**values: str) -> tuple[float, dict[str, str], int, str]:
    return (0.1, values, 0, 'ok')


def test_a_fleet_status_line_has_the_learner_then_every_robot():
    snapshot = {'/f/learner_node': entry(version='3', updates='3', experience_hz='40'),
                '/f/robot_0/camera_node': entry(rate_hz='20'),
                '/f/robot_1/camera_node': entry(rate_hz='19'),
                '/f/robot_1/policy_node': entry(policy_version='3')}
    lines = format_line(snapshot, 30.0, {}, '/f', system.robot_namespaces('/f', 2)).splitlines()
    assert 'learner v3 updates 3 experience 40 Hz' in lines[0]
    assert lines[1].startswith('  robot_0: camera 20 Hz') and 'policy v-' in lines[1]
    assert lines[2].startswith('  robot_1: camera 19 Hz') and 'policy v3' in lines[2]


def test_one_system_keeps_one_robot_line_and_reports_restarts():
    snapshot = {'/learner_node': entry(version='1'), '/camera_node': entry(rate_hz='20')}
    lines = format_line(snapshot, 5.0, {'restarts/learner_node': 2, 'down': ''}).splitlines()
    assert 'restarts learner_node 2' in lines[0] and len(lines) == 2
    assert lines[1].startswith('  robot: camera 20 Hz')


def test_no_value_yet_reads_as_a_dash_and_the_explorer_shows_its_progress():
    snapshot = {'/learner_node': entry(version='0', intrinsic_reward='nan'),
                '/policy_node': entry(policy_version='0', bandit_holds='42', places_in_window='17')}
    lines = format_line(snapshot, 50.0).splitlines()
    assert lines[0].endswith('reward -'), lines[0]   # NaN before the first update
    assert '| explorer 42 holds 17 places |' in lines[1], lines[1]
    per_tick = format_line({'/policy_node': entry(policy_version='3')}, 5.0).splitlines()[1]
    assert 'explorer' not in per_tick, per_tick


def test_the_screen_names_nodes_by_their_full_name():
    screen = format_screen({'/a/policy_node': entry(rate_hz='20')})
    assert screen.splitlines()[0].startswith('/a/policy_node')
    assert 'rate_hz=20' in screen.splitlines()[1]


def test_a_q_learner_shows_its_exploration_loss_and_replay_instead_of_a_reward():
    snapshot = {'/learner_node': entry(version='12', updates='96', experience_hz='3.9', epsilon='0.42',
                                       q_loss='0.01', replay_size='300')}
    line = format_line(snapshot, 90.0).splitlines()[0]
    assert line.endswith('experience 3.9 Hz epsilon 0.42 loss 0.01 replay 300') and 'reward' not in line, line

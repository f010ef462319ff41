"""The launch file, the launcher, config/ami.yaml and the declared parameters agree."""
import argparse
import ast
import importlib
import re
from pathlib import Path

import pytest
import yaml

from ami_nodes import system
from ami_nodes.tools import launcher

REPO = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((REPO / 'config' / 'ami.yaml').read_text())
WILDCARD = CONFIG.get('/**', {}).get('ros__parameters', {})


def declared(spec: system.NodeSpec) -> dict:
    return {p.name: p for p in importlib.import_module(spec.module).PARAMETERS}


def test_yaml_has_a_section_for_every_node_and_nothing_else():
    expected = {spec.name for spec in system.NODES} | {system.WORLD_SECTION, '/**'}
    assert set(CONFIG) == expected


@pytest.mark.parametrize('spec', system.NODES, ids=lambda s: s.name)
def test_every_yaml_key_is_declared_and_every_parameter_is_in_the_yaml(spec):
    params = declared(spec)
    section = CONFIG[spec.name]['ros__parameters']
    assert not set(section) - set(params), f'{spec.name}: undeclared keys in ami.yaml'
    readable = set(section) | set(WILDCARD) | set(system.SHARED_FROM_ARGUMENTS)
    assert not set(params) - readable, f'{spec.name}: parameters missing from ami.yaml'
    for name, value in {**{k: v for k, v in WILDCARD.items() if k in params}, **section}.items():
        default = params[name].default
        assert isinstance(value, type(default)) or (
            isinstance(default, float) and isinstance(value, int)), (name, value, default)
        params[name].check(value)
        if params[name].min is not None and not isinstance(value, bool):
            assert params[name].min <= value <= params[name].max, name


def test_every_parameter_has_a_description():
    for spec in system.NODES:
        for param in declared(spec).values():
            assert len(param.description) > 10, (spec.name, param.name)


def test_wildcard_keys_are_each_used_by_some_node():
    used = set().union(*(declared(spec) for spec in system.NODES))
    assert set(WILDCARD) <= used


def test_world_section_matches_world_options():
    from ami_nodes.world.main import parse_args
    section = CONFIG[system.WORLD_SECTION]['ros__parameters']
    parsed = vars(parse_args(system.world_arguments(section)))
    assert {key: parsed[key] for key in section} == section


def test_launcher_takes_the_launch_arguments():
    args = launcher.parse_args([])
    for argument in system.LAUNCH_ARGUMENTS:
        assert getattr(args, argument.name) == argument.default


def test_launch_file_builds_from_the_system_description():
    tree = ast.parse((REPO / 'launch' / 'ami.launch.py').read_text())
    attributes = {f'{n.value.id}.{n.attr}' for n in ast.walk(tree)
                  if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    assert {'system.LAUNCH_ARGUMENTS', 'system.plan', 'system.default_config',
            'system.fastdds_profile', 'system.world_arguments'} <= attributes


def test_launcher_node_command_matches_launch_parameters():
    plan = system.plan(CONFIG, vars(launcher.parse_args(['--namespace', 'lab'])))
    node = plan.nodes[0]
    command = launcher.node_command(node, Path('params.yaml'))
    assert command[command.index('--params-file') + 1] == 'params.yaml'
    assert f'__node:={node.spec.name}' in command and '__ns:=/lab' in command
    sections = system.parameters_file(plan)
    assert set(sections) == {f'/lab/{spec.name}' for spec in system.NODES}
    for name in system.SHARED_FROM_ARGUMENTS:
        assert name in sections[node.fully_qualified_name]['ros__parameters']


@pytest.mark.parametrize('namespace', ['f', ''])
def test_a_fleet_places_a_stack_per_robot_and_one_learner(namespace):
    """Also at the root, where the learner's own YAML section once undid its fleet topics."""
    plan = system.plan(CONFIG, vars(launcher.parse_args(['--robots', '2',
                                                         '--namespace', namespace])))
    f = f'/{namespace}' if namespace else ''
    world = CONFIG[system.WORLD_SECTION]['ros__parameters']
    assert [w.parameters['http_port'] for w in plan.worlds] == [world['http_port'],
                                                                world['http_port'] + 1]
    assert len({w.parameters['seed'] for w in plan.worlds}) == 2
    names = {n.fully_qualified_name: n for n in plan.nodes}
    assert f'{f}/learner_node' in names and f'{f}/robot_1/policy_node' in names
    assert len(names) == 2 * (len(system.NODES) - 1) + 1
    camera = names[f'{f}/robot_1/camera_node'].parameters['video_device']
    assert f":{world['http_port'] + 1}/" in camera
    assert names[f'{f}/robot_1/osc_bridge_node'].parameters['port'] == world['osc_port'] + 1
    assert ('policy_weights', f'{f}/policy_weights') in names[f'{f}/robot_0/policy_node'].remappings
    learner = names[f'{f}/learner_node'].parameters
    assert learner['experience_topics'] == ['robot_0/experience', 'robot_1/experience']
    assert 'robot_1-perception_node' in learner['checkpoint_parts']


def test_a_section_named_by_full_name_sets_one_robot():
    config = {**CONFIG, 'robot_1/camera_node': {'ros__parameters': {'video_device': '2'}}}
    plan = system.plan(config, vars(launcher.parse_args(['--robots', '2', '--world', 'false'])))
    cameras = {n.fully_qualified_name: n.parameters['video_device'] for n in plan.nodes
               if n.spec.name == 'camera_node'}
    assert cameras == {'/robot_0/camera_node': CONFIG['camera_node']['ros__parameters'][
        'video_device'], '/robot_1/camera_node': '2'}


def test_roles_split_a_fleet_between_hosts():
    args = ['--robots', '2', '--role']
    learner = system.plan(CONFIG, vars(launcher.parse_args([*args, 'learner'])))
    robots = system.plan(CONFIG, vars(launcher.parse_args([*args, 'robots'])))
    assert [n.fully_qualified_name for n in learner.nodes] == ['/learner_node'] and \
        not learner.worlds
    assert len(robots.worlds) == 2 and len(robots.nodes) == 2 * (len(system.NODES) - 1)
    assert all(n.spec.name != system.LEARNER for n in robots.nodes)


def test_robots_must_be_a_positive_count():
    with pytest.raises(SystemExit):
        launcher.parse_args(['--robots', '0'])


def test_console_scripts_cover_every_node():
    setup = (REPO / 'setup.py').read_text()
    for spec in system.NODES:
        assert re.search(rf"'{spec.executable} = {re.escape(spec.module)}:main'", setup)


def test_package_xml_lists_the_message_packages():
    package = (REPO / 'package.xml').read_text()
    for dep in ('rclpy', 'sensor_msgs', 'std_msgs', 'std_srvs', 'geometry_msgs', 'diagnostic_msgs'):
        assert f'<exec_depend>{dep}</exec_depend>' in package


#: The core config dataclasses each node builds from its parameters, by the same names.
CORE_CONFIGS = {
    'learner_node': ('ami_nodes.learning.learner:LearnerConfig', 'ami_nodes.learning.ppo:PPOConfig',
                     'ami_nodes.learning.branching_q:BranchingQConfig',
                     'ami_nodes.learning.decision_stream_q:DecisionStreamConfig'),
    'perception_node': ('ami_nodes.perception.online:OnlinePerceptionConfig',
                        'ami_nodes.perception.aux_losses:AuxLossConfig'),
}


def config_type(path: str) -> type:
    module, name = path.split(':')
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize('node', sorted(CORE_CONFIGS))
def test_core_config_defaults_are_the_parameter_table(node):
    from ami_nodes.settings import config_from, default_of, settings_of
    spec = next(s for s in system.NODES if s.name == node)
    params = declared(spec)
    values = {**{name: p.default for name, p in params.items()},
              **{k: v for k, v in WILDCARD.items() if k in params},
              **CONFIG[node]['ros__parameters']}
    for path in CORE_CONFIGS[node]:
        cls = config_type(path)
        settings = list(settings_of(cls))
        assert settings, path
        for item, setting in settings:
            param = params[item.name]  # the same name: nothing is renamed on the way in
            assert param.default == default_of(item) == getattr(cls(), item.name), item.name
            assert type(param.default) is type(default_of(item)), item.name
            assert (param.min, param.max, param.description, param.live) == (
                setting.min, setting.max, setting.description, setting.live), item.name
        built = config_from(cls, values)  # what the node builds from config/ami.yaml
        assert all(getattr(built, item.name) == values[item.name] for item, _ in settings)


def test_the_drifted_learner_defaults_are_one_value_now():
    from ami_nodes.learning.learner import LearnerConfig
    params = declared(next(s for s in system.NODES if s.name == 'learner_node'))
    assert LearnerConfig().extrinsic_weight == params['extrinsic_weight'].default == 0.0
    assert LearnerConfig().min_new_samples == params['min_new_samples'].default == 128


def test_command_line_node_settings_become_config_overrides(tmp_path):
    from ami_nodes.tools.launch_config import node_sections, node_setting, write_config
    settings = [node_setting('policy_node.action_mode=held_sample'), node_setting('ami_world.seed=7'),
                node_setting('policy_node.sticky_max_s=1.5')]
    written = yaml.safe_load(write_config(tmp_path / 'ami.yaml', node_sections(settings)).read_text())
    assert written['policy_node']['ros__parameters']['action_mode'] == 'held_sample'
    assert written['policy_node']['ros__parameters']['sticky_max_s'] == 1.5
    assert written['ami_world']['ros__parameters']['seed'] == 7
    with pytest.raises(argparse.ArgumentTypeError):
        node_setting('action_mode=held_sample')

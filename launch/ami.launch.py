"""ros2 launch ami_nodes ami.launch.py [world:=true] [actuator:=osc|none] [config:=...]
                                      [namespace:=NAME] [robots:=N]

Starts the same processes as `ami_launch` (the pip path), from the same description in
ami_nodes.system (system.plan places every node: namespace, fleet) and the same parameters.
policy_node, osc_bridge_node, perception_node and learner_node are managed (lifecycle) nodes;
their `autostart` parameter (default true, as nav2's lifecycle_manager calls it) configures
and activates each at start, respawns included, so every node is active without a lifecycle
manager. Set `autostart: false` in the parameters file to drive them with
`ros2 lifecycle set` instead.
"""
import inspect
import os
import sys

import yaml
from launch.actions import DeclareLaunchArgument, ExecuteLocal, ExecuteProcess, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ami_nodes import system
from ami_nodes.monitoring.training_log import default_run_name
from launch import LaunchDescription


def _respawn() -> dict:
    """Restart a node that died, as ami_launch does (launch has a fixed delay, no back-off;
    a restarted node rejoins its run from the newest checkpoint: see ami_nodes.system)."""
    policy = system.RESTART_POLICY
    options = {'respawn': True, 'respawn_delay': policy.first_delay_s}
    if 'respawn_max_retries' in inspect.signature(ExecuteLocal.__init__).parameters:
        options['respawn_max_retries'] = policy.max_restarts  # Iron and newer
    return options


def _nodes(context):
    arguments = {a.name: LaunchConfiguration(a.name).perform(context)
                 for a in system.LAUNCH_ARGUMENTS}
    arguments['run_name'] = arguments['run_name'] or default_run_name()
    config = arguments['config'] or str(system.default_config())
    with open(config) as stream:
        plan = system.plan(yaml.safe_load(stream), arguments)
    actions = [ExecuteProcess(
        cmd=[sys.executable, '-m', 'ami_nodes.world.main',
             *system.world_arguments(world.parameters)], name=world.name, output='screen',
        **_respawn()) for world in plan.worlds]
    for node in plan.nodes:
        actions.append(Node(
            package=system.PACKAGE, executable=node.spec.executable, name=node.spec.name,
            namespace=node.namespace, parameters=[node.parameters],
            remappings=list(node.remappings), output='screen', **_respawn()))
    return actions


def generate_launch_description():
    arguments = [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                                       **({'choices': list(a.choices)} if a.choices else {}))
                 for a in system.LAUNCH_ARGUMENTS]
    return LaunchDescription([
        *arguments,
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', os.environ.get(
            'FASTDDS_DEFAULT_PROFILES_FILE', str(system.fastdds_profile()))),
        OpaqueFunction(function=_nodes),
    ])

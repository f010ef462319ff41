"""ros2 launch ami_nodes ami.launch.py [world:=true] [actuator:=osc|none] [config:=...]

Starts the same processes as `ami_launch` (the pip path), from the same description in
ami_nodes.system and the same parameters file. policy_node, osc_bridge_node, perception_node
and learner_node are managed (lifecycle) nodes; their `autostart` parameter (default true, as
nav2's lifecycle_manager calls it) configures and activates each at start, respawns included,
so every node is active without a lifecycle manager. Set `autostart: false` in the parameters
file to drive them with `ros2 lifecycle set` instead.
"""
import inspect
import os
import sys

import yaml
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, ExecuteLocal, ExecuteProcess,
                            OpaqueFunction, SetEnvironmentVariable)
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ami_nodes import system
from ami_nodes.monitoring.training_log import default_run_name


def _respawn() -> dict:
    """Restart a node that died, as ami_launch does (launch has a fixed delay, no back-off;
    a restarted node rejoins its run from the newest checkpoint: see ami_nodes.system)."""
    policy = system.RESTART_POLICY
    options = {'respawn': True, 'respawn_delay': policy.first_delay_s}
    if 'respawn_max_retries' in inspect.signature(ExecuteLocal.__init__).parameters:
        options['respawn_max_retries'] = policy.max_restarts  # Iron and newer
    return options


def _nodes(context):
    config = LaunchConfiguration('config').perform(context) or str(system.default_config())
    actuator = LaunchConfiguration('actuator').perform(context)
    shared = {name: LaunchConfiguration(name).perform(context)
              for name in system.SHARED_FROM_ARGUMENTS}
    shared['run_name'] = shared['run_name'] or default_run_name()
    with open(config) as stream:
        description = yaml.safe_load(stream)
    world_params = description.get(system.WORLD_SECTION, {}).get('ros__parameters', {})
    actions = [ExecuteProcess(
        cmd=[sys.executable, '-m', 'ami_nodes.world.main',
             *system.world_arguments(world_params)], name='ami_world',
        output='screen', condition=IfCondition(LaunchConfiguration('world')), **_respawn())]
    for spec in system.nodes_for(actuator):
        actions.append(Node(
            package=system.PACKAGE, executable=spec.executable, name=spec.name,
            parameters=[config, shared], remappings=list(spec.remappings), output='screen',
            **_respawn()))
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

"""One description of the running system, read by launch/ami.launch.py and by ami_launch.

Both start the same nodes, as separate processes, with the same parameters file and the
same launch arguments, so the ROS way and the pip way cannot drift apart (a test checks it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ami_nodes.tools.supervision import RestartPolicy

PACKAGE = 'ami_nodes'
WORLD_SECTION = 'ami_world'


@dataclass(frozen=True)
class NodeSpec:
    """A node of the system: its name (= YAML section), module, and topic remappings."""

    name: str
    module: str
    remappings: tuple[tuple[str, str], ...] = ()
    actuator: str | None = None  # started only when the `actuator` launch argument matches

    @property
    def executable(self) -> str:
        return self.name


NODES: tuple[NodeSpec, ...] = (
    NodeSpec('camera_node', 'ami_nodes.nodes.camera_node'),
    NodeSpec('perception_node', 'ami_nodes.nodes.perception_node'),
    NodeSpec('policy_node', 'ami_nodes.nodes.policy_node'),
    NodeSpec('learner_node', 'ami_nodes.nodes.learner_node'),
    NodeSpec('osc_bridge_node', 'ami_nodes.nodes.osc_bridge_node', actuator='osc'),
)


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str
    description: str
    choices: tuple[str, ...] = field(default=())


LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument('config', '', 'Parameters file (empty: the package config/ami.yaml)'),
    LaunchArgument('world', 'true', 'Start the built-in world (false for VRChat or a robot)',
                   ('true', 'false')),
    LaunchArgument('actuator', 'osc', "'osc' drives VRChat/the world; 'none' leaves cmd_vel to "
                   'a robot driver of your own', ('osc', 'none')),
    LaunchArgument('checkpoint_dir', 'checkpoints', 'Folder where checkpoints are written'),
    LaunchArgument('checkpoint', '', "Resume from a checkpoint folder, or 'latest'"),
    LaunchArgument('log_dir', 'runs', 'Folder of TensorBoard training logs'),
    LaunchArgument('run_name', '', 'Training-log run folder (empty: the launch time)'),
)

#: How ami_launch and the launch file restart a process that died: back-off from 1 s
#: doubling to 30 s, at most 5 restarts in 10 minutes. The shared `run_name` is what lets a
#: restarted node find its run's newest checkpoint and rejoin from it.
RESTART_POLICY = RestartPolicy()

#: Parameters every node gets from the launch arguments of the same name.
SHARED_FROM_ARGUMENTS = ('checkpoint_dir', 'checkpoint', 'log_dir', 'run_name')


def nodes_for(actuator: str) -> list[NodeSpec]:
    """The nodes to start for an `actuator` launch argument value."""
    return [n for n in NODES if n.actuator is None or n.actuator == actuator]


def share_dir() -> Path:
    """Where config/ and launch/ live: the source tree, or the installed share folder."""
    source = Path(__file__).resolve().parent.parent
    if (source / 'config' / 'ami.yaml').is_file():
        return source
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory(PACKAGE))


def default_config() -> Path:
    return share_dir() / 'config' / 'ami.yaml'


def fastdds_profile() -> Path:
    """The Fast DDS profile that lets messages above 512 KB through shared memory."""
    return share_dir() / 'config' / 'fastdds_large_messages.xml'


def world_arguments(world_params: dict) -> list[str]:
    """Command-line arguments of ami_world from its YAML section."""
    args = []
    for key, value in world_params.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args

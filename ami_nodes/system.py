"""One description of the running system, read by launch/ami.launch.py and by ami_launch.

Both start the same nodes, as separate processes, with the same parameters file and the
same launch arguments, so the ROS way and the pip way cannot drift apart (a test checks it).
`plan` places them: every node in the `namespace` launch argument, or, for a fleet
(`robots` > 1), one stack of world, camera, perception, policy and bridge per robot under
`<namespace>/robot_<i>` and one learner in `<namespace>` that learns from all of them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    LaunchArgument('namespace', '', 'ROS namespace of the whole system (empty: the root); '
                   'systems in one ROS domain under different namespaces do not see each other'),
    LaunchArgument('robots', '1', 'Robot stacks: 1 is one system; N > 1 starts N stacks under '
                   'robot_<i> (world, camera, perception, policy, bridge) and one learner'),
    LaunchArgument('role', 'all', "What this host starts: 'all', only the 'learner' (e.g. on a "
                   "GPU machine) or only the 'robots' (their worlds and stacks)",
                   ('all', 'learner', 'robots')),
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


LEARNER = 'learner_node'
ROBOT_PREFIX = 'robot_'
#: Topics a fleet's robots share with its one learner: they live in the fleet's namespace.
FLEET_TOPICS = ('policy_weights', 'checkpoint/request', 'checkpoint/done')
#: Node names never contain '-', so it joins a namespace path into one checkpoint part name.
PART_SEPARATOR = '-'


@dataclass(frozen=True)
class PlacedNode:
    """A node to start: where it lives, every parameter it gets, and its remappings."""

    spec: NodeSpec
    namespace: str  # absolute: '/' or '/a/b'
    parameters: dict[str, Any]
    remappings: tuple[tuple[str, str], ...]

    @property
    def fully_qualified_name(self) -> str:
        return join(self.namespace, self.spec.name)


@dataclass(frozen=True)
class PlacedWorld:
    """A built-in world to start: its process label and its options."""

    name: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    namespace: str
    robot_namespaces: tuple[str, ...]
    worlds: tuple[PlacedWorld, ...]
    nodes: tuple[PlacedNode, ...]


def join(namespace: str, *names: str) -> str:
    """An absolute ROS name from a namespace ('' or '/' is the root) and relative names."""
    parts = [p for part in (namespace, *names) for p in part.split('/') if p]
    return '/' + '/'.join(parts)


def robot_namespaces(namespace: str, robots: int) -> tuple[str, ...]:
    """Where each robot's nodes live: the system's namespace itself for one robot."""
    if robots < 1:
        raise ValueError(f'robots must be at least 1, got {robots}')
    if robots == 1:
        return (join(namespace),)
    return tuple(join(namespace, f'{ROBOT_PREFIX}{i}') for i in range(robots))


def part_name(fully_qualified_name: str, checkpoint_namespace: str) -> str:
    """A node's part in a checkpoint taken in `checkpoint_namespace`: its name relative to
    that namespace, '/' written as '-' (robot_0-policy_node); a node outside it keeps its
    whole path."""
    root = join(checkpoint_namespace)
    name = join(fully_qualified_name)
    relative = name[len(root):] if root != '/' and name.startswith(root + '/') else name
    return PART_SEPARATOR.join(p for p in relative.split('/') if p)


def _section(description: Mapping[str, Any], name: str) -> dict[str, Any]:
    return dict((description.get(name) or {}).get('ros__parameters') or {})


def _robot_overrides(description: Mapping[str, Any], index: int, with_world: bool
                     ) -> dict[str, dict[str, Any]]:
    """Robot `index` of a fleet: its world on its own ports with its own seed, a camera and a
    bridge pointed at that world, and its own action-sampling seed. Perception keeps the
    configured seed: every robot's encoder starts from the same weights (docs/scaling.md)."""
    world = _section(description, WORLD_SECTION)
    policy = _section(description, 'policy_node')
    overrides: dict[str, dict[str, Any]] = {'policy_node': {'seed': policy.get('seed', 0) + index}}
    if with_world:
        http_port = int(world.get('http_port', 8090)) + index
        osc_port = int(world.get('osc_port', 9000)) + index
        host = world.get('host', '127.0.0.1')
        overrides[WORLD_SECTION] = {'http_port': http_port, 'osc_port': osc_port,
                                    'seed': int(world.get('seed', 0)) + index}
        overrides['camera_node'] = {'video_device': f'http://{host}:{http_port}/stream.mjpg'}
        overrides['osc_bridge_node'] = {'host': host, 'port': osc_port}
    return overrides


def plan(description: Mapping[str, Any], arguments: Mapping[str, str]) -> Plan:
    """Every world and node to start for these launch arguments (values as strings)."""
    namespace = join(str(arguments.get('namespace', '')))
    robots = int(arguments.get('robots', 1))
    stacks = robot_namespaces(namespace, robots)
    fleet = robots > 1
    role = str(arguments.get('role', 'all'))
    with_world = str(arguments.get('world', 'true')) == 'true' and role != 'learner'
    common = _section(description, '/**')
    shared = {name: str(arguments.get(name, '')) for name in SHARED_FROM_ARGUMENTS}

    def params(spec_name: str, where: str, extra: Mapping[str, Any]) -> dict[str, Any]:
        """The YAML's `/**`, the node's section, the launch arguments, what the fleet sets,
        then a section named by the node's full name (`/robot_1/camera_node`), if any. At the
        root the relative full name is the node's own section: not again, or it would undo
        what the fleet sets (a root fleet's learner then read `experience`, no robot's)."""
        full = join(where, spec_name)
        relative = full.lstrip('/')
        by_full_name = _section(description, relative) if relative != spec_name else {}
        return {**common, **_section(description, spec_name), **shared, **extra,
                **by_full_name, **_section(description, full)}

    worlds, nodes = [], []
    fleet_remaps = tuple((topic, join(namespace, topic)) for topic in FLEET_TOPICS)
    for index, stack in enumerate(stacks if role != 'learner' else ()):
        overrides = _robot_overrides(description, index, with_world) if fleet else {}
        if with_world:
            worlds.append(PlacedWorld(
                f'ami_world{stack.replace("/", "_") if fleet else ""}',
                {**_section(description, WORLD_SECTION), **overrides.get(WORLD_SECTION, {})}))
        for spec in nodes_for(str(arguments.get('actuator', 'osc'))):
            if spec.name != LEARNER:
                nodes.append(PlacedNode(
                    spec, stack, params(spec.name, stack, overrides.get(spec.name, {})),
                    spec.remappings + (fleet_remaps if fleet else ())))
    learner = next(spec for spec in NODES if spec.name == LEARNER)
    learner_extra: dict[str, Any] = {}
    if fleet:
        parts = _section(description, LEARNER).get('checkpoint_parts', [LEARNER])
        learner_extra = {
            'experience_topics': [f'{ROBOT_PREFIX}{i}/experience' for i in range(robots)],
            'checkpoint_parts': [LEARNER] + [part_name(join(stack, p), namespace)
                                             for stack in stacks for p in parts if p != LEARNER]}
    if role != 'robots':
        nodes.append(PlacedNode(learner, namespace, params(LEARNER, namespace, learner_extra),
                                learner.remappings))
    return Plan(namespace, stacks, tuple(worlds), tuple(nodes))


def parameters_file(placed: Plan) -> dict[str, Any]:
    """One parameters file for every placed node, keyed by its fully qualified name: a section
    named `camera_node` applies only to /camera_node, not to /robot_0/camera_node."""
    return {node.fully_qualified_name: {'ros__parameters': node.parameters}
            for node in placed.nodes}

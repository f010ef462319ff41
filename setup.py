"""ament_python package definition: works with `colcon build` and with `pip install -e .`."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'ami_nodes'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench', 'bench.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='ami_nodes developers',
    maintainer_email='ami-nodes@example.com',
    description='A robot that learns while it runs: camera, online perception, policy, '
                'curiosity-driven PPO learner and a VRChat OSC bridge as ROS 2 nodes.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'camera_node = ami_nodes.nodes.camera_node:main',
            'perception_node = ami_nodes.nodes.perception_node:main',
            'policy_node = ami_nodes.nodes.policy_node:main',
            'learner_node = ami_nodes.nodes.learner_node:main',
            'osc_bridge_node = ami_nodes.nodes.osc_bridge_node:main',
            'ami_world = ami_nodes.world.main:main',
            'ami_launch = ami_nodes.tools.launcher:main',
            'ami = ami_nodes.tools.cli:main',
        ],
    },
)

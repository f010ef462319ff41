"""Test isolation: each pytest process gets its own ROS domain and localhost-only discovery."""
import os

os.environ['ROS_DOMAIN_ID'] = str(1 + os.getpid() % 100)
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('PYTHONUNBUFFERED', '1')


import pytest  # noqa: E402  (after the environment is set, before rclpy is imported)


@pytest.fixture
def watcher():
    """An rclpy node in the test process that records what arrives on topics."""
    from ros_harness import Watcher
    w = Watcher()
    yield w
    w.close()

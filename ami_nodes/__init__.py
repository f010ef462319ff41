"""ami_nodes: a robot that learns while it runs, as ROS 2 nodes around a pure-Python core."""

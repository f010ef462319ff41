"""ROS 2 nodes: each wires parameters, topics, services and timers to a pure core."""

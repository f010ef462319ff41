"""The thin ROS 2 shell shared by every node: parameters, QoS, messages, diagnostics."""

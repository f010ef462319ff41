"""Recordings of the running system in the rosbag2 MCAP layout (no rclpy here)."""

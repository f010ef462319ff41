"""Reading frames from a camera, a file or a stream, without ROS."""

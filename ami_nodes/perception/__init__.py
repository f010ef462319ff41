"""Online-trained perception core (no rclpy): encoder, auxiliary losses, the online trainer, probes."""

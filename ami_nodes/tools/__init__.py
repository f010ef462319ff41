"""Command-line tools: the launcher (`ami_launch`) and the control command (`ami`)."""

"""The built-in world: a small first-person scene that stands in for VRChat + OBS.

It takes the same OSC inputs VRChat does, serves its view as an MJPEG stream the camera node
reads like any other source, and knows ground truth (pose, cells visited) for evaluation.
"""

"""Actuators: how a velocity command becomes inputs of a particular body."""

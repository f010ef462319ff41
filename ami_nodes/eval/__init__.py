"""Offline evaluations that turn "it learns" into numbers."""

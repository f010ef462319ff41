"""Benchmarks: evidence that the parts do what they claim, with numbers."""

"""One exception family, so node code can catch every persistence failure in one place."""
from __future__ import annotations


class PersistenceError(Exception):
    """Base class: the message says what is wrong and what to do about it."""


class WeightsError(PersistenceError, ValueError):
    """A weight blob is malformed, corrupt, stale, or does not fit the model."""


class CheckpointError(PersistenceError):
    """A checkpoint cannot be written, found, verified or applied."""

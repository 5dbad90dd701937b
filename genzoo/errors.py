"""Errors a user can cause.

Every mistake a user can make (a bad config, a missing file, an incompatible checkpoint) raises
`GenzooError` with one sentence that says what is wrong and what to do. The CLI prints that sentence
and exits with status 2, without a traceback.
"""

from __future__ import annotations


class GenzooError(Exception):
    """A mistake the user can fix; the message says what is wrong and what to do."""


class ConfigError(GenzooError):
    """A config value, key, preset or override is wrong."""


class DataError(GenzooError):
    """A dataset is missing, empty, unreadable or incompatible with the model."""


class CheckpointError(GenzooError):
    """A run folder or checkpoint is missing, inconsistent, or of another family or shape."""


class RunFinished(GenzooError):
    """Resuming a run that has trained all its steps: nothing to do (the CLI says so and exits 0)."""

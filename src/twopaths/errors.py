"""User-facing errors.

Anything a user can cause by what they type or what they point us at (a wrong path, a corrupt
checkpoint, an unknown config key, a dataset too small for one batch) raises a subclass of
:class:`TwopathsError`. The CLI prints those as one clear ``error: ...`` line and exits with
status 2; anything else is a bug and keeps its traceback.
"""


class TwopathsError(Exception):
    """Base class for errors caused by input, data or environment, not by a bug."""


class ConfigError(TwopathsError):
    """Unknown config key, wrong type, or invalid value."""


class DataError(TwopathsError):
    """Missing, corrupt, undecodable or too-small data."""


class CheckpointError(TwopathsError):
    """Missing, truncated, corrupt or foreign checkpoint."""


class TrainingDiverged(TwopathsError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(TwopathsError):
    """SIGINT or SIGTERM stopped training after a checkpoint at a step boundary."""

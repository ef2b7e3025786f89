"""One exception family whose message is written for the person at the terminal."""


class ModelyardError(Exception):
    """An error caused by input or environment, reported as one line without a traceback."""


class DatasetError(ModelyardError):
    """A dataset file is missing, corrupt or unreadable."""


class RepositoryError(ModelyardError):
    """The model repository has no such model or version, or a version is damaged."""


class EncodingError(ModelyardError, ValueError):
    """An input cannot be encoded the way the model expects."""

"""The engine's error type for malformed model files."""


class ModelFormatError(ValueError):
    """A model file is truncated, corrupted or inconsistent; the message names the problem.

    Subclasses ``ValueError`` so callers that only know the standard library can catch it.
    """

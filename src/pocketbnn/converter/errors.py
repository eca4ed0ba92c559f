"""The converter's error type."""


class ConversionError(ValueError):
    """The model uses an op or configuration the converter cannot express; the message names
    the op and the module path where it occurs."""

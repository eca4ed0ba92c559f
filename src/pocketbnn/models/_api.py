"""The model registry: builders registered by name, found with ``list_models``/``get_model``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["get_model", "get_model_builder", "list_models", "register_model"]

Builder = Callable[..., nn.Module]

_MODELS: dict[str, Builder] = {}


def register_model(name: str, builder: Builder | None = None):
    """Register ``builder`` under ``name``; usable as ``@register_model("name")`` or as a call
    ``register_model("name", builder)`` (for one builder registered at several settings).

    Raises:
        ValueError: ``name`` is already registered.
    """

    def register(fn: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = fn
        return fn

    return register if builder is None else register(builder)


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_MODELS)


def get_model_builder(name: str) -> Builder:
    """The builder registered as ``name``.

    Raises:
        ValueError: no model of that name; the message lists the registered names.
    """
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


def get_model(name: str, **config) -> nn.Module:
    """Build the model registered as ``name`` with keyword arguments ``config``
    (``num_classes``, ``in_channels``, ...).

    Raises:
        ValueError: no model of that name; the message lists the registered names.
    """
    return get_model_builder(name)(**config)

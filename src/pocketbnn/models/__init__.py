"""The model zoo: every builder is registered by name; see :func:`list_models`.

Builders take keyword arguments only (``num_classes``, ``in_channels``) and accept any input
size the architecture's strides allow.
"""

from pocketbnn.models import pokebnn, quicknet, resnet
from pocketbnn.models._api import get_model, list_models, register_model

__all__ = ["get_model", "list_models", "pokebnn", "quicknet", "register_model", "resnet"]

"""The model zoo: every builder is registered by name; see :func:`list_models`.

Builders take keyword arguments only (``num_classes``, ``in_channels``) and accept any input
size the architecture's strides allow.
"""

from pocketbnn.models import (
    alexnet, birealnet, pokebnn, quicknet, quicknet_mini, reactnet, real_to_binary, resnet,
)
from pocketbnn.models._api import get_model, get_model_builder, list_models, register_model

__all__ = [
    "alexnet", "birealnet", "get_model", "get_model_builder", "list_models", "pokebnn", "quicknet",
    "quicknet_mini", "reactnet", "real_to_binary", "register_model", "resnet",
]

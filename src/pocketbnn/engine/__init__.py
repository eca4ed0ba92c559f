"""The pocketbnn inference engine: loads a ``.pbnn`` model file and runs it. Needs only numpy
and the compiled core, never torch.

    >>> interp = pocketbnn.engine.load("model.pbnn", num_threads=2)
    >>> logits = interp.run(image_nhwc)            # float32 [N, H, W, C]
    >>> interp.profile(image_nhwc).by_op_type()    # ms per op type
"""

from __future__ import annotations

from pocketbnn.engine import model_file
from pocketbnn.engine.errors import ModelFormatError
from pocketbnn.engine.executor import DEFAULT_MAX_PLAN_BYTES, Interpreter, OpTiming, Profile
from pocketbnn.engine.graph import Graph, InputSpec, Node
from pocketbnn.engine.model_file import FORMAT_VERSION, WORD_BITS

__all__ = [
    "FORMAT_VERSION",
    "WORD_BITS",
    "Graph",
    "InputSpec",
    "Interpreter",
    "ModelFormatError",
    "Node",
    "OpTiming",
    "Profile",
    "from_bytes",
    "load",
    "save",
    "to_bytes",
]


def to_bytes(graph: Graph) -> bytes:
    """Serialize a graph (with its parameters) in the model file format."""
    data, tensors = graph.to_json()
    return model_file.to_bytes(model_file.ModelFile(data, tensors))


def save(graph: Graph, path: str) -> None:
    """Write a graph to ``path`` as a model file."""
    with open(path, "wb") as f:
        f.write(to_bytes(graph))


def from_bytes(data: bytes, *, num_threads: int = 1, max_plan_bytes: int = DEFAULT_MAX_PLAN_BYTES) -> Interpreter:
    """Load a model held in memory (see :func:`load`)."""
    content = model_file.from_bytes(data)
    return Interpreter(Graph.from_json(content.graph, content.tensors), num_threads=num_threads,
                       max_plan_bytes=max_plan_bytes)


def load(path: str, *, num_threads: int = 1, max_plan_bytes: int = DEFAULT_MAX_PLAN_BYTES) -> Interpreter:
    """Load the model file at ``path`` and plan it for its declared input shape.

    Raises:
        ModelFormatError: the file is truncated, corrupted or inconsistent.
    """
    with open(path, "rb") as f:
        return from_bytes(f.read(), num_threads=num_threads, max_plan_bytes=max_plan_bytes)

"""The ``.pbnn`` single-file model format: a fixed header, the graph as JSON, then tensors.

Layout (all integers little-endian)::

    offset 0   8 bytes   magic  b"PBNNMODL"
    offset 8   u32       format version (FORMAT_VERSION)
    offset 12  u32       word size in bits of bit-packed tensors (WORD_BITS = 64)
    offset 16  u64       n = length of the graph JSON
    offset 24  n bytes   graph JSON (UTF-8, space-padded so the next section starts 8-aligned)
    then                 a safetensors section: u64 header length, JSON header, data buffer

Version 1 fixes the bit convention of packed tensors: values packed along the last axis into
64-bit words, LSB first, bit 1 = negative (sign(0) = +1), rows padded with 0 bits. Version 2
adds weights of up to 4 bits stored two codes per byte (uint8, ``ops.base.int4_pairs``); the
engine reads both versions and writes version 2. The
safetensors section is a valid safetensors file on its own (``safetensors.numpy.load`` reads
it); tensors are written in decreasing item size, so each one is naturally aligned and reading
is zero-copy: arrays are read-only views of the file's bytes.

Loading never executes code. Every size in the file is checked against the file's length before
anything is allocated, so a malicious header cannot cause a huge allocation.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from pocketbnn.engine.errors import ModelFormatError

MAGIC = b"PBNNMODL"
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
WORD_BITS = 64
_PREFIX = struct.Struct("<8sIIQ")
_MAX_NDIM = 8

_DTYPES = {"F32": np.float32, "I32": np.int32, "I8": np.int8, "U8": np.uint8, "U64": np.uint64,
           "I64": np.int64}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}


@dataclass
class ModelFile:
    """A model file's content: the graph (plain JSON data) and its named tensors."""

    graph: dict[str, Any]
    tensors: dict[str, np.ndarray]


def to_bytes(model: ModelFile) -> bytes:
    """Serialize ``model`` (see module docstring for the layout)."""
    graph = json.dumps(model.graph, separators=(",", ":"), sort_keys=True).encode()
    graph += b" " * (-(_PREFIX.size + len(graph)) % 8)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, WORD_BITS, len(graph))
    return prefix + graph + _safetensors_bytes(model.tensors)


def save(model: ModelFile, path: str) -> None:
    """Write ``model`` to ``path``."""
    with open(path, "wb") as f:
        f.write(to_bytes(model))


def _safetensors_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    order = sorted(tensors, key=lambda k: (-np.dtype(tensors[k].dtype).itemsize, k))
    header: dict[str, Any] = {"__metadata__": {"format": "pocketbnn"}}
    chunks, offset = [], 0
    for name in order:
        array = np.ascontiguousarray(tensors[name])
        if array.dtype not in _CODES:
            raise TypeError(f"tensor {name!r} has unsupported dtype {array.dtype}")
        data = array.tobytes()
        header[name] = {"dtype": _CODES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def from_bytes(buffer: bytes | memoryview) -> ModelFile:
    """Parse a model file held in memory; tensors are read-only views of ``buffer``.

    Raises:
        ModelFormatError: the bytes are not a valid model file of this version.
    """
    buffer = memoryview(buffer).cast("B")
    size = len(buffer)
    if size < _PREFIX.size:
        raise ModelFormatError(f"file too short: {size} bytes, a model file has at least {_PREFIX.size}")
    magic, version, word_bits, graph_len = _PREFIX.unpack_from(buffer, 0)
    if magic != MAGIC:
        raise ModelFormatError(f"not a pocketbnn model file (magic {bytes(magic)!r}, expected {MAGIC!r})")
    if version not in _READABLE_VERSIONS:
        raise ModelFormatError(f"model file format version {version}; this engine reads versions "
                               f"{', '.join(map(str, _READABLE_VERSIONS))}")
    if word_bits != WORD_BITS:
        raise ModelFormatError(f"model packs bits in {word_bits}-bit words; this engine uses {WORD_BITS}")
    start = _PREFIX.size
    if graph_len > size - start:
        raise ModelFormatError(f"graph section claims {graph_len} bytes but only {size - start} remain (truncated file?)")
    graph = _parse_json(buffer[start:start + graph_len], "graph")
    if not isinstance(graph, dict):
        raise ModelFormatError("graph section is not a JSON object")
    return ModelFile(graph, _read_safetensors(buffer[start + graph_len:]))


def load(path: str) -> ModelFile:
    """Read and parse the model file at ``path`` (see :func:`from_bytes`)."""
    with open(path, "rb") as f:
        return from_bytes(f.read())


def _parse_json(raw: memoryview, what: str) -> Any:
    try:
        return json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ModelFormatError(f"{what} section is not valid JSON: {e}") from None


def _read_safetensors(section: memoryview) -> dict[str, np.ndarray]:
    if len(section) < 8:
        raise ModelFormatError("tensor section missing or truncated (no safetensors header length)")
    (header_len,) = struct.unpack_from("<Q", section, 0)
    if header_len > len(section) - 8:
        raise ModelFormatError(f"tensor header claims {header_len} bytes but only {len(section) - 8} remain")
    header = _parse_json(section[8:8 + header_len], "tensor header")
    if not isinstance(header, dict):
        raise ModelFormatError("tensor header is not a JSON object")
    data = section[8 + header_len:]
    tensors, spans = {}, []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        array, span = _tensor_view(name, entry, data)
        tensors[name] = array
        spans.append(span)
    spans.sort()
    for (_, end), (begin, _) in zip(spans, spans[1:]):
        if begin < end:
            raise ModelFormatError("tensors overlap in the data buffer")
    return tensors


def _tensor_view(name: str, entry: Any, data: memoryview) -> tuple[np.ndarray, tuple[int, int]]:
    if not isinstance(entry, dict):
        raise ModelFormatError(f"tensor {name!r}: header entry is not an object")
    dtype = _DTYPES.get(entry.get("dtype")) if isinstance(entry.get("dtype"), str) else None
    if dtype is None:
        raise ModelFormatError(f"tensor {name!r}: unsupported dtype {entry.get('dtype')!r}")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if (not isinstance(shape, list) or len(shape) > _MAX_NDIM
            or not all(type(d) is int and d >= 0 for d in shape)):
        raise ModelFormatError(f"tensor {name!r}: bad shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(o) is int for o in offsets) or not 0 <= offsets[0] <= offsets[1] <= len(data)):
        raise ModelFormatError(f"tensor {name!r}: data offsets {offsets!r} outside the {len(data)}-byte buffer")
    itemsize = np.dtype(dtype).itemsize
    count = int(np.prod(shape, dtype=object)) if shape else 1
    begin, end = offsets
    if end - begin != count * itemsize:
        raise ModelFormatError(f"tensor {name!r}: shape {shape} needs {count * itemsize} bytes, offsets span {end - begin}")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=begin).reshape(shape)
    return array, (begin, end)

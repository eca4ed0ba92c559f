"""Thousands of mutated model files: each loads (and runs) or raises ModelFormatError."""

import numpy as np
import pytest

from engine_graphs import small_graph
from pocketbnn import engine
from pocketbnn.engine import ModelFormatError

_BLOB = engine.to_bytes(small_graph())
_X = np.random.default_rng(0).standard_normal((1, 9, 9, 4)).astype(np.float32)


def _mutate(rng: np.random.Generator, blob: bytes) -> bytes:
    data = bytearray(blob)
    kind = rng.integers(4)
    if kind == 0:
        return bytes(data[:rng.integers(len(data))])
    if kind == 1:
        for _ in range(rng.integers(1, 8)):
            data[rng.integers(len(data))] = rng.integers(256)
    elif kind == 2:  # flip a byte in the graph or tensor header, where it matters most
        header_end = min(len(data), 24 + 1200)
        data[rng.integers(header_end)] ^= 1 << rng.integers(8)
    else:  # replace a run of digits in the JSON with a big or negative number
        text = data[:2000]
        digits = [i for i, c in enumerate(text) if 48 <= c <= 57]
        if digits:
            i = digits[rng.integers(len(digits))]
            data[i:i + 1] = rng.choice([b"99999999999", b"-1", b"0", b"1e9"])
    return bytes(data)


@pytest.mark.parametrize("chunk", range(4))
def test_mutated_files_load_or_raise_format_error(chunk):
    rng = np.random.default_rng(chunk)
    loaded = 0
    for _ in range(750):
        blob = _mutate(rng, _BLOB)
        try:
            interp = engine.from_bytes(blob, max_plan_bytes=1 << 26)
        except ModelFormatError:
            continue
        loaded += 1
        interp.run(_X)  # whatever loads must also run
    assert loaded > 0

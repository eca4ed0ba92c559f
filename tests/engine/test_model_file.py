import struct

import numpy as np
import pytest
import safetensors.numpy

from engine_graphs import small_graph
from pocketbnn import engine
from pocketbnn.engine import ModelFormatError, model_file


def test_round_trip_keeps_graph_and_tensors_bit_exact(tmp_path):
    graph = small_graph()
    path = tmp_path / "m.pbnn"
    engine.save(graph, str(path))
    content = model_file.load(str(path))
    data, tensors = graph.to_json()
    assert content.graph == data
    assert set(content.tensors) == set(tensors)
    for name, array in tensors.items():
        assert content.tensors[name].dtype == array.dtype
        np.testing.assert_array_equal(content.tensors[name], array)
    x = np.random.default_rng(1).standard_normal((3, 9, 9, 4)).astype(np.float32)
    np.testing.assert_array_equal(engine.load(str(path)).run(x), engine.from_bytes(engine.to_bytes(graph)).run(x))


def test_tensors_are_aligned_read_only_views():
    content = model_file.from_bytes(engine.to_bytes(small_graph()))
    for array in content.tensors.values():
        assert array.flags.aligned and not array.flags.writeable and not array.flags.owndata


def test_tensor_section_is_a_valid_safetensors_file():
    blob = engine.to_bytes(small_graph())
    (graph_len,) = struct.unpack_from("<Q", blob, 16)
    tensors = safetensors.numpy.load(blob[24 + graph_len:])
    _, expected = small_graph().to_json()
    assert set(tensors) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(tensors[name], expected[name])


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:10], "too short"),
    (lambda b: b"XXXXXXXX" + b[8:], "not a pocketbnn model"),
    (lambda b: b[:8] + struct.pack("<I", 99) + b[12:], "version 99"),
    (lambda b: b[:12] + struct.pack("<I", 32) + b[16:], "32-bit words"),
    (lambda b: b[:16] + struct.pack("<Q", 1 << 60) + b[24:], "truncated"),
    (lambda b: b[:-5], "outside"),
])
def test_malformed_files_raise_format_error_naming_the_problem(mutate, message):
    with pytest.raises(ModelFormatError, match=message):
        engine.from_bytes(mutate(engine.to_bytes(small_graph())))


def test_inconsistent_graph_is_rejected_at_load():
    graph = small_graph()
    graph.nodes[2].attrs["channels_in"] = 9
    with pytest.raises(ModelFormatError, match="bconv"):
        engine.from_bytes(engine.to_bytes(graph))
    graph = small_graph()
    graph.nodes[1].inputs = ["nope"]
    with pytest.raises(ModelFormatError, match="before it is produced"):
        engine.from_bytes(engine.to_bytes(graph))
    graph = small_graph()
    graph.nodes[0].op = "exec"
    with pytest.raises(ModelFormatError, match="unknown op 'exec'"):
        engine.from_bytes(engine.to_bytes(graph))


def test_huge_declared_input_is_refused_before_allocation():
    graph = small_graph()
    graph.inputs[0].shape = (1, 200_000, 200_000, 4)
    with pytest.raises(ModelFormatError, match="exceed"):
        engine.from_bytes(engine.to_bytes(graph))

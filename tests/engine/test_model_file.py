import struct

import numpy as np
import pytest
import safetensors.numpy

from engine_graphs import small_graph
from pocketbnn import engine
from pocketbnn.engine import Graph, InputSpec, ModelFormatError, Node, model_file
from pocketbnn.engine.ops.base import int4_codes, int4_pairs


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


def test_version_1_files_still_load():
    blob = engine.to_bytes(small_graph())
    old = blob[:8] + struct.pack("<I", 1) + blob[12:]
    x = np.random.default_rng(0).standard_normal(small_graph().inputs[0].shape).astype(np.float32)
    np.testing.assert_array_equal(engine.from_bytes(old).run(x), engine.from_bytes(blob).run(x))


@pytest.mark.parametrize("channels", [1, 2, 7, 16])
def test_int4_pairs_round_trip(channels):
    codes = np.random.default_rng(channels).integers(-8, 8, (3, 5, channels)).astype(np.int8)
    pairs = int4_pairs(codes)
    assert pairs.dtype == np.uint8 and pairs.shape == (3, 5, (channels + 1) // 2)
    np.testing.assert_array_equal(int4_codes(pairs, channels), codes)


def _int4_dense(weights, scale, batch=2):
    return Graph([InputSpec("x", (batch, weights.shape[0]))],
                 [Node("fc", "dense", ["x"], ["y"], {}, {"weights": weights, "weights_scale": scale})],
                 ["y"], {"name": "int4"})


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("batch", [1, 2, 6])  # up to 4 rows stream the int8 codes, more run float GEMM
@pytest.mark.parametrize("out_c", [5, 70])
def test_quantized_weights_run_as_codes_times_scale(bits, batch, out_c):
    rng = np.random.default_rng(bits + batch)
    q = 2 ** (bits - 1) - 1
    codes = rng.integers(-q, q + 1, (40, out_c)).astype(np.int8)
    scale = rng.uniform(0.1, 1, out_c).astype(np.float32)
    x = rng.standard_normal((batch, 40)).astype(np.float32)
    graph = _int4_dense(int4_pairs(codes) if bits == 4 else codes, scale, batch)
    got = engine.from_bytes(engine.to_bytes(graph)).run(x)
    w = codes.astype(np.float64) * scale
    # float32 sums: the error scales with the terms' magnitudes, not with the result's.
    np.testing.assert_array_less(np.abs(got - x @ w), 1e-6 * (np.abs(x) @ np.abs(w)) + 1e-6)


def test_quantized_1x1_conv_on_a_1x1_map_streams_codes():
    """An SE block's 1x1 convs (int4 in PokeBNN) on the pooled map: the int8-code product."""
    rng = np.random.default_rng(5)
    codes = rng.integers(-7, 8, (1, 1, 64, 40)).astype(np.int8)
    scale, bias = rng.uniform(0.1, 1, (2, 40)).astype(np.float32)
    graph = Graph([InputSpec("x", (2, 1, 1, 64))], [
        Node("se", "conv2d", ["x"], ["c"], {"kernel": [1, 1]},
             {"weights": int4_pairs(codes), "weights_scale": scale, "bias": bias}),
        Node("act", "relu", ["c"], ["y"])], ["y"], {"name": "se"})
    model = engine.from_bytes(engine.to_bytes(graph))
    assert model.ops[0].gemv is not None
    x = rng.standard_normal((2, 1, 1, 64)).astype(np.float32)
    want = np.maximum(x.reshape(2, 64) @ (codes.reshape(64, 40) * scale) + bias, 0)
    np.testing.assert_allclose(model.run(x).reshape(2, 40), want, rtol=1e-5, atol=1e-5)


def test_int4_weights_of_the_wrong_width_are_a_format_error():
    scale = np.ones(5, np.float32)
    with pytest.raises(ModelFormatError, match="2 bytes of 4-bit codes per row for 5 channels"):
        engine.from_bytes(engine.to_bytes(_int4_dense(np.zeros((6, 2), np.uint8), scale)))


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

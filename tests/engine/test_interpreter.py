import threading

import numpy as np
import pytest

from engine_graphs import small_graph
from pocketbnn import engine
from pocketbnn.engine import executor
from pocketbnn.engine.ops.float_conv import DIRECT_MAX_K
from references import conv2d_pm1_numpy


@pytest.fixture
def interp():
    return engine.from_bytes(engine.to_bytes(small_graph()))


def test_wrong_input_shape_dtype_and_count_raise_value_error(interp):
    with pytest.raises(ValueError, match=r"shape \(1, 8, 9, 4\).*\('N', 9, 9, 4\)"):
        interp.run(np.zeros((1, 8, 9, 4), np.float32))
    with pytest.raises(ValueError, match="float32, got float64"):
        interp.run(np.zeros((1, 9, 9, 4)))
    with pytest.raises(ValueError, match="takes 1 inputs, got 2"):
        interp.run([np.zeros((1, 9, 9, 4), np.float32)] * 2)


def test_batch_rows_are_independent(interp):
    x = np.random.default_rng(0).standard_normal((4, 9, 9, 4)).astype(np.float32)
    batched = interp.run(x)
    for k in range(4):
        np.testing.assert_allclose(interp.run(x[k:k + 1])[0], batched[k], rtol=1e-6, atol=1e-7)


def test_steady_state_reuses_planned_buffers(interp):
    x = np.random.default_rng(0).standard_normal((1, 9, 9, 4)).astype(np.float32)
    interp.run(x)
    plan = interp._plan(x.shape and (x.shape,))
    pooled = plan._pool[0]
    ids = [id(a) for a in pooled[0][1:]]
    interp.run(x)
    assert len(plan._pool) == 1 and [id(a) for a in plan._pool[0][0][1:]] == ids


def test_concurrent_runs_match_serial_runs(interp):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, 9, 9, 4)).astype(np.float32) for _ in range(8)]
    expected = [interp.run(x) for x in xs]
    results = [None] * len(xs)

    def work(k):
        for _ in range(5):
            results[k] = interp.run(xs[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_profile_lists_every_node(interp):
    x = np.zeros((1, 9, 9, 4), np.float32)
    profile = interp.profile(x, repeats=3, warmup=1)
    assert [t.node for t in profile.ops] == [n.name for n in interp.graph.nodes]
    assert profile.total_ms >= profile.ops_ms * 0.5 and all(t.ms >= 0 for t in profile.ops)


def test_values_share_memory_without_clobbering_live_values(interp):
    """Buffers of values with disjoint lifetimes share arenas; no live value is overwritten
    (the oracle-checked outputs are unchanged) and an op never writes over its own inputs."""
    x = np.random.default_rng(1).standard_normal((2, 9, 9, 4)).astype(np.float32)
    want = interp.run(x)
    plan = interp._plan((x.shape,))
    assert len(plan.arena_bytes) < len(plan.value_specs) - plan.num_inputs
    for step in plan.steps:
        ins = {plan.arena_of[i] for i in step.inputs if i >= plan.num_inputs}
        assert not ins & {plan.arena_of[o] for o in step.outputs}
    for k in plan.outputs:
        assert sum(a == plan.arena_of[k] for a in plan.arena_of) == 1
    np.testing.assert_array_equal(interp.run(x), want)


def _relu_graph(seed=0):
    from pocketbnn.engine import Graph, InputSpec, Node
    rng = np.random.default_rng(seed)
    conv = lambda name, src, dst, groups, cin: Node(  # noqa: E731
        name, "conv2d", [src], [dst], {"kernel": [3, 3], "stride": [1, 1], "pads": [1, 1, 1, 1], "groups": groups},
        {"weights": rng.standard_normal((3, 3, cin // groups, 6)).astype(np.float32),
         "bias": rng.standard_normal(6).astype(np.float32)})
    return Graph([InputSpec("x", (1, 7, 7, 6))], [
        conv("c1", "x", "a", 1, 6), Node("r1", "relu", ["a"], ["b"]),          # im2col conv + ReLU
        conv("c2", "b", "c", 6, 6), Node("r2", "relu", ["c"], ["d"]),          # depthwise + ReLU
        Node("add", "add", ["b", "d"], ["e"]), Node("r3", "relu", ["e"], ["f"]),  # add + ReLU
        Node("r4", "relu", ["f"], ["y"]),                                       # a ReLU after a fused one
    ], ["y", "e"] if seed else ["y"], {"name": "relus"})


@pytest.mark.parametrize("seed", [0, 1])
def test_relu_fusion_matches_unfused_run(seed, monkeypatch):
    from pocketbnn.engine.ops.base import Op
    x = np.random.default_rng(2).standard_normal((2, 7, 7, 6)).astype(np.float32)
    fused = engine.from_bytes(engine.to_bytes(_relu_graph(seed)))
    got = fused.run(x)
    plan = fused._plan((x.shape,))
    # seed 1 makes the add's output a graph output: that ReLU must not be fused.
    assert [s.node_name for s in plan.steps if s.fused] == (["r1", "r2"] if seed else ["r1", "r2", "r3"])
    assert fused.profile(x, repeats=2, warmup=1).ops[1].op == "relu"
    for cls in {type(op) for op in fused.ops}:
        monkeypatch.setattr(cls, "can_fuse_relu", Op.can_fuse_relu)
    monkeypatch.setattr(executor._Plan, "_fuse_adds_into_stages", lambda plan: None)
    plain = engine.from_bytes(engine.to_bytes(_relu_graph(seed)))
    assert not any(s.fused for s in plain._plan((x.shape,)).steps)
    want = plain.run(x)
    for g, w in zip(got if seed else [got], want if seed else [want]):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def _residual_graph(seed=0):
    from pocketbnn import kernels
    from pocketbnn.engine import Graph, InputSpec, Node
    rng = np.random.default_rng(seed)

    def bconv(name, src, dst):
        params = {"weights": kernels.pack_bits(rng.standard_normal((70, 3, 3, 70)).astype(np.float32)),
                  "multiplier": rng.standard_normal(70).astype(np.float32),
                  "bias": rng.standard_normal(70).astype(np.float32)}
        return Node(name, "bconv2d", [src], [dst], {"kernel": [3, 3], "channels_in": 70, "pads": [1, 1, 1, 1],
                                                    "clamp": [0, 2**31 - 1]}, params)
    return Graph([InputSpec("x", (1, 6, 5, 70))], [
        Node("q1", "quantize", ["x"], ["p1"]), bconv("b1", "p1", "c1"),
        Node("add1", "add", ["c1", "x"], ["s1"]),            # shortcut = the graph input (bound per run)
        Node("q2", "quantize", ["s1"], ["p2"]), bconv("b2", "p2", "c2"),
        Node("add2", "add", ["s1", "c2"], ["s2"]),           # operands the other way round
        Node("q3", "quantize", ["s2"], ["p3"]), bconv("b3", "p3", "c3"),
        Node("add3", "add", ["c3", "s2"], ["s3"]),           # seed 1: c3 is a graph output, no fusion
        Node("q4", "quantize", ["s3"], ["p4"]), bconv("b4", "p4", "c4"),
        Node("r4", "relu", ["c4"], ["d4"]),                  # b4's epilogue
        Node("add4", "add", ["d4", "s3"], ["y"]),            # after a ReLU: not fused
    ], ["y", "c3"] if seed else ["y"], {"name": "residuals"})


@pytest.mark.parametrize("seed", [0, 1])
def test_residual_add_fusion_matches_unfused_run(seed, monkeypatch):
    """A binary conv's float output added to a same-shape value: the add runs in the conv's
    output stage (the add step is a no-op), as does a ReLU after it (its epilogue); results
    equal the unfused run's."""
    from pocketbnn.engine.ops.base import Op
    x = np.random.default_rng(3).standard_normal((2, 6, 5, 70)).astype(np.float32)
    fused = engine.from_bytes(engine.to_bytes(_residual_graph(seed)))
    got = fused.run(x)
    plan = fused._plan((x.shape,))
    assert [s.node_name for s in plan.steps if s.fused] == (
        ["add1", "add2", "r4"] if seed else ["add1", "add2", "add3", "r4"])
    for cls in {type(op) for op in fused.ops}:
        monkeypatch.setattr(cls, "can_fuse_add", Op.can_fuse_add)
        monkeypatch.setattr(cls, "can_fuse_epilogue", Op.can_fuse_epilogue)
    plain = engine.from_bytes(engine.to_bytes(_residual_graph(seed)))
    assert not any(s.fused for s in plain._plan((x.shape,)).steps)
    want = plain.run(x)
    for g, w in zip(got if seed else [got], want if seed else [want]):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("groups, cin, cout", [(1, 6, 8), (1, 32, 8), (6, 6, 6), (6, 6, 12), (4, 4, 12), (3, 6, 9)])
@pytest.mark.parametrize("threads", [1, 2])
def test_float_conv_groups_match_numpy(groups, cin, cout, threads):
    """conv2d by every path: direct (reduction 3 * 3 * 6 <= DIRECT_MAX_K), im2col GEMM (3 * 3 * 32
    above it), depthwise (channel multiplier 1, 2, 3; compiled), other
    groups (numpy per-group GEMMs), zero padding, against a float64 convolution."""
    from pocketbnn.engine import Graph, InputSpec, Node
    rng = np.random.default_rng(groups * cout)
    w_ohwi = rng.standard_normal((cout, 3, 3, cin // groups)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    graph = Graph([InputSpec("x", (2, 7, 6, cin))], [
        Node("conv", "conv2d", ["x"], ["y"], {"kernel": [3, 3], "pads": [1, 1, 1, 1], "groups": groups},
             {"weights": np.ascontiguousarray(w_ohwi.transpose(1, 2, 3, 0)), "bias": bias})], ["y"], {"name": "conv"})
    x = rng.standard_normal((2, 7, 6, cin)).astype(np.float32)
    interp = engine.from_bytes(engine.to_bytes(graph), num_threads=threads)
    got = interp.run(x)
    conv = interp._plan((x.shape,)).steps[0].op
    assert conv._direct(got.shape) == (groups == 1 and 9 * cin <= DIRECT_MAX_K)
    want = conv2d_pm1_numpy(x, w_ohwi, padding="same", pad_value=0.0, groups=groups) + bias
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_reshape_add_fuses_the_add_into_the_channel_map():
    """PokeBNN's ReshapeAdd: a channel average / zero-pad / tile followed by the add of a
    same-shape value is one pass (the add step is a no-op), against numpy."""
    from pocketbnn.engine import Graph, InputSpec, Node
    graph = Graph([InputSpec("x", (2, 5, 4, 12)), InputSpec("s6", (2, 5, 4, 6)), InputSpec("s16", (2, 5, 4, 16))], [
        Node("avg", "channel_avg", ["x"], ["a"], {"out_channels": 6}),
        Node("add_avg", "add", ["s6", "a"], ["y_avg"]),
        Node("pad", "channel_zeropad", ["x"], ["p"], {"out_channels": 16}),
        Node("add_pad", "add", ["p", "s16"], ["y_pad"]),
        Node("tile", "channel_tile", ["x"], ["t"], {"out_channels": 16}),
        Node("add_tile", "add", ["t", "y_pad"], ["y_tile"]),
    ], ["y_avg", "y_tile"], {"name": "reshape_add"})
    rng = np.random.default_rng(5)
    x, s6, s16 = (rng.standard_normal(i.shape).astype(np.float32) for i in graph.inputs)
    interp = engine.from_bytes(engine.to_bytes(graph))
    y_avg, y_tile = interp.run([x, s6, s16])
    assert [s.node_name for s in interp._plan((x.shape, s6.shape, s16.shape)).steps if s.fused] == \
        ["add_avg", "add_pad", "add_tile"]
    padded = np.concatenate([x, np.zeros_like(x[..., :4])], axis=-1)
    np.testing.assert_allclose(y_avg, x.reshape(2, 5, 4, 6, 2).mean(-1) + s6, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(y_tile, np.concatenate([x, x[..., :4]], axis=-1) + (padded + s16))


@pytest.mark.parametrize("gate_first", [False, True])
def test_se_gate_then_scale_shift_is_one_pass(isa, gate_first, monkeypatch):
    """PokeBNN's SE gate mul followed by its BatchNorm (scale_shift) runs as one pass of the
    per-channel kernel; the result equals the two ops run apart, bit for bit."""
    from pocketbnn.engine import Graph, InputSpec, Node
    from pocketbnn.engine.ops.base import Op
    rng = np.random.default_rng(6)
    graph = Graph([InputSpec("x", (2, 5, 4, 6))], [
        Node("gap", "global_avgpool", ["x"], ["g0"], {"keepdims": True}),
        Node("sig", "hardsigmoid", ["g0"], ["g"]),
        Node("se", "mul", ["g", "x"] if gate_first else ["x", "g"], ["m"]),
        Node("bn", "scale_shift", ["m"], ["y"], {"channels": 6},
             {"scale": rng.standard_normal(6).astype(np.float32), "shift": rng.standard_normal(6).astype(np.float32)}),
    ], ["y"], {"name": "se_bn"})
    x = rng.standard_normal((2, 5, 4, 6)).astype(np.float32)
    fused = engine.from_bytes(engine.to_bytes(graph))
    assert [s.node_name for s in fused._plan((x.shape,)).steps if s.fused] == ["bn"]
    got = fused.run(x)
    monkeypatch.setattr(type(fused.ops[2]), "can_fuse_scale_shift", Op.can_fuse_scale_shift)
    plain = engine.from_bytes(engine.to_bytes(graph))
    assert not any(s.fused for s in plain._plan((x.shape,)).steps)
    np.testing.assert_array_equal(got, plain.run(x))
    g = np.clip(x.astype(np.float64).mean(axis=(1, 2), keepdims=True) + 3, 0, 6) / 6
    np.testing.assert_allclose(got, x * g * graph.nodes[3].params["scale"] + graph.nodes[3].params["shift"],
                               rtol=1e-5, atol=1e-5)


def _pokebnn_tail_graph(hw: int, gate_first: bool, shared: bool):
    """PokeBNN's tail of a conv: shortcut add, DPReLU, an SE gate (pooled from the block
    input) times the DPReLU's output, BatchNorm. ``shared``: the DPReLU's output is a graph
    output too, so it must be materialized and nothing fuses into the gate."""
    from pocketbnn.engine import Graph, InputSpec, Node
    rng = np.random.default_rng(hw)
    vec = lambda: rng.standard_normal(6).astype(np.float32)  # noqa: E731
    nodes = [
        Node("add", "add", ["x", "s"], ["a"]),
        Node("act", "prelu", ["a"], ["p"], {"channels": 6},
             {"bias_x": vec(), "pos_slope": vec(), "neg_slope": vec(), "bias_y": vec()}),
        Node("gap", "global_avgpool", ["s"], ["g0"], {"keepdims": True}),
        Node("sig", "hardsigmoid", ["g0"], ["g"]),
        Node("se", "mul", ["g", "p"] if gate_first else ["p", "g"], ["m"]),
        Node("bn", "scale_shift", ["m"], ["y"], {"channels": 6}, {"scale": vec(), "shift": vec()}),
    ]
    shape = (2, hw, hw, 6)
    return Graph([InputSpec("x", shape), InputSpec("s", shape)], nodes, ["y", "p"] if shared else ["y"],
                 {"name": "pokebnn_tail"})


@pytest.mark.parametrize("hw", [1, 5])  # 1: the map has the gate's shape
@pytest.mark.parametrize("gate_first", [False, True])
@pytest.mark.parametrize("shared", [False, True])
def test_add_prelu_gate_bn_is_one_pass(isa, hw, gate_first, shared, monkeypatch):
    """The add is done by the DPReLU's pass, and the DPReLU by the SE gate's (with the BN
    fused there already): one pass of the per-channel kernel instead of four, with the same
    result as the ops run apart (bit for bit when the DPReLU's output is shared; else up to
    rounding, the gate and BN's stage composed with the DPReLU's into one)."""
    rng = np.random.default_rng(7)
    x, s = rng.standard_normal((2, 2, hw, hw, 6)).astype(np.float32)
    graph = _pokebnn_tail_graph(hw, gate_first, shared)
    fused = engine.from_bytes(engine.to_bytes(graph))
    steps = fused._plan((x.shape, s.shape)).steps
    # A 1x1 map has the gate's shape: with the DPReLU's output shared, the gate's hard-sigmoid
    # (a stage too) joins the product instead, the DPReLU's output then being the "gate".
    shared_fused = ["add", "sig", "bn"] if hw == 1 else ["add", "bn"]
    assert [t.node_name for t in steps if t.fused] == (shared_fused if shared else ["add", "act", "bn"])
    got = fused.run([x, s])
    monkeypatch.setattr(executor._Plan, "_fuse_adds_into_stages", lambda plan: None)
    monkeypatch.setattr(executor._Plan, "_fuse_stages_into_gates", lambda plan: None)
    plain = engine.from_bytes(engine.to_bytes(graph))
    assert [t.node_name for t in plain._plan((x.shape, s.shape)).steps if t.fused] == ["bn"]
    for g, w in zip(got if shared else [got], plain.run([x, s]) if shared else [plain.run([x, s])]):
        if shared:
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    p = {k: v.astype(np.float64) for k, v in graph.nodes[1].params.items()}
    z = x.astype(np.float64) + s - p["bias_x"]
    act = np.where(z >= 0, p["pos_slope"], p["neg_slope"]) * z - p["bias_y"]
    gate = np.clip(s.astype(np.float64).mean(axis=(1, 2), keepdims=True) + 3, 0, 6) / 6
    bn = graph.nodes[5].params
    y = got[0] if shared else got
    np.testing.assert_allclose(y, act * gate * bn["scale"] + bn["shift"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("gate_first", [False, True])
def test_se_gate_mul_matches_numpy(gate_first):
    """An SE gate [N,1,1,C] times its [N,H,W,C] map (the compiled per-image path), either
    operand order, and a plain broadcast mul (numpy's path), against numpy."""
    from pocketbnn.engine import Graph, InputSpec, Node
    gate = Node("gap", "global_avgpool", ["x"], ["g0"], {"keepdims": True})
    ops = [gate, Node("sig", "sigmoid", ["g0"], ["g"]),
           Node("se", "mul", ["g", "x"] if gate_first else ["x", "g"], ["y"]),
           Node("row", "mul", ["y", "r"], ["z"])]
    graph = Graph([InputSpec("x", (2, 5, 4, 6)), InputSpec("r", (2, 1, 4, 6))], ops, ["y", "z"], {"name": "se"})
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 4, 6)).astype(np.float32)
    r = rng.standard_normal((2, 1, 4, 6)).astype(np.float32)
    y, z = engine.from_bytes(engine.to_bytes(graph)).run([x, r])
    g = 1 / (1 + np.exp(-x.astype(np.float64).mean(axis=(1, 2), keepdims=True)))
    np.testing.assert_allclose(y, x * g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z, x * g * r, rtol=1e-5, atol=1e-6)


def test_padding_moves_into_packing_and_results_are_unchanged(monkeypatch):
    """quantize -> one-padded bconv2d: the quantize writes the padded image, the conv reads it
    unpadded; outputs equal those of the plain plan. A zero-padded conv keeps its padding."""
    from pocketbnn.engine import executor
    graph = _residual_graph(1)
    overrides = executor.padding_into_packing(graph)
    assert overrides["q1"]["pads"] == [1, 1, 1, 1] and overrides["b1"]["pads"] == [0, 0, 0, 0]
    assert {"q1", "b1", "q2", "b2", "q3", "b3", "q4", "b4"} == set(overrides)
    x = np.random.default_rng(5).standard_normal((2, 6, 5, 70)).astype(np.float32)
    moved = engine.from_bytes(engine.to_bytes(graph))
    assert moved._plan((x.shape,)).specs["p1"].shape == (2, 8, 7, 2)
    got = moved.run(x)
    monkeypatch.setattr(executor, "padding_into_packing", lambda g: {})
    want = engine.from_bytes(engine.to_bytes(graph)).run(x)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    zero_padded = _residual_graph(1)
    zero_padded.nodes[1].attrs["pad_value"] = 0
    assert "q1" not in executor.padding_into_packing(zero_padded)


def _mapped_shortcut_graph(out_c, shortcut_c, dense=False):
    """PokeBNN's conv3 tail: y = bconv(x) + zeropad(x) + tile(r), as a 3x3 conv or a binary
    dense layer (a 1x1 conv on 2-D input)."""
    from pocketbnn import kernels
    from pocketbnn.engine import Graph, InputSpec, Node
    rng = np.random.default_rng(out_c)
    shape = (2, shortcut_c) if dense else (2, 5, 4, shortcut_c)
    k = [1, 1] if dense else [3, 3]
    conv = Node("conv", "bconv2d", ["p"], ["c"],
                {"kernel": k, "channels_in": shortcut_c} | ({} if dense else {"pads": [1, 1, 1, 1]}),
                {"weights": kernels.pack_bits(rng.standard_normal((out_c, *k, shortcut_c)).astype(np.float32)),
                 "multiplier": rng.standard_normal(out_c).astype(np.float32),
                 "bias": rng.standard_normal(out_c).astype(np.float32)})
    return Graph([InputSpec("x", shape), InputSpec("r", shape)], [
        Node("q", "quantize", ["x"], ["p"]), conv,
        Node("pad", "channel_zeropad", ["x"], ["xp"], {"out_channels": out_c}),
        Node("add1", "add", ["c", "xp"], ["s"]),
        Node("tile", "channel_tile", ["r"], ["rt"], {"out_channels": out_c}),
        Node("add2", "add", ["rt", "s"], ["y"]),
    ], ["y"], {"name": "mapped"})


@pytest.mark.parametrize("out_c, shortcut_c, fuses", [(256, 64, True), (128, 128, True), (200, 64, True),
                                                       (96, 70, False)])
@pytest.mark.parametrize("dense", [False, True])
def test_channel_map_shortcut_runs_in_the_bconv_output_stage(isa, out_c, shortcut_c, fuses, dense, monkeypatch):
    """A zero-pad (or tile) added to a binary conv's output is added by the conv's output
    stage: the map and the add are no-ops, the result equals the unfused run's bit for bit. A
    shortcut of channels not a multiple of 64 keeps its own pass."""
    from pocketbnn.engine import executor
    rng = np.random.default_rng(1)
    shape = (2, shortcut_c) if dense else (2, 5, 4, shortcut_c)
    x, r = rng.standard_normal((2, *shape)).astype(np.float32)
    graph = _mapped_shortcut_graph(out_c, shortcut_c, dense)
    fused = engine.from_bytes(engine.to_bytes(graph))
    steps = fused._plan((x.shape, r.shape)).steps
    assert [t.node_name for t in steps if t.fused] == (["pad", "add1", "add2"] if fuses else ["add1", "add2"])
    got = fused.run([x, r])
    monkeypatch.setattr(executor._Plan, "_fuse_mapped_residual_adds", lambda plan: None)
    plain = engine.from_bytes(engine.to_bytes(graph))
    assert [t.node_name for t in plain._plan((x.shape, r.shape)).steps if t.fused] == ["add1", "add2"]
    np.testing.assert_array_equal(got, plain.run([x, r]))


def _pokeconv_graph(out_c, in_c, tiled=False):
    """A PokeConv as the converter writes it: y = BN(SE(x) * DPReLU(bconv(x) + zeropad(x) + r)),
    the SE gate pooled from the conv's input x; ``tiled``: r has in_c channels, tiled onto the
    output's (a downsampling block's long shortcut)."""
    from pocketbnn import kernels
    from pocketbnn.engine import Graph, InputSpec, Node
    rng = np.random.default_rng(out_c + in_c)
    vec = lambda: rng.standard_normal(out_c).astype(np.float32)  # noqa: E731
    conv = Node("conv", "bconv2d", ["p"], ["c"], {"kernel": [3, 3], "channels_in": in_c, "pads": [1, 1, 1, 1]},
                {"weights": kernels.pack_bits(rng.standard_normal((out_c, 3, 3, in_c)).astype(np.float32)),
                 "multiplier": vec(), "bias": vec()})
    tile = [Node("tile", "channel_tile", ["r"], ["rt"], {"out_channels": out_c})] if tiled else []
    return Graph([InputSpec("x", (2, 5, 4, in_c)), InputSpec("r", (2, 5, 4, in_c if tiled else out_c))], [
        Node("q", "quantize", ["x"], ["p"]), conv,
        Node("pad", "channel_zeropad", ["x"], ["xp"], {"out_channels": out_c}),
        Node("add1", "add", ["c", "xp"], ["s"]),
        *tile,
        Node("add2", "add", ["s", "rt" if tiled else "r"], ["a"]),
        Node("act", "prelu", ["a"], ["d"], {"channels": out_c},
             {"bias_x": vec(), "pos_slope": vec(), "neg_slope": vec(), "bias_y": vec()}),
        Node("se_pool", "global_avgpool", ["x"], ["g1"], {"keepdims": True}),
        Node("se_fc", "conv2d", ["g1"], ["g0"], {"kernel": [1, 1]},
             {"weights": rng.standard_normal((1, 1, in_c, out_c)).astype(np.float32), "bias": vec()}),
        Node("se_sig", "hardsigmoid", ["g0"], ["g"]),
        Node("se", "mul", ["d", "g"], ["m"]),
        Node("bn", "scale_shift", ["m"], ["y"], {"channels": out_c}, {"scale": vec(), "shift": vec()}),
    ], ["y"], {"name": "pokeconv"})


@pytest.mark.parametrize("out_c, in_c", [(256, 64), (64, 64), (70, 64), (130, 70)])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("tiled", [False, True])
def test_pokeconv_tail_runs_as_the_bconv_epilogue(isa, out_c, in_c, threads, tiled, monkeypatch):
    """PokeBNN's whole conv tail (shortcuts, DPReLU, SE gate, BN) runs inside the binary conv:
    the zero-pad shortcut in its output stage, the rest as its epilogue on each block as it is
    written (the conv's step moves after the gate's); the SE squeeze of the conv's input is done
    by the (padded) packing of that input; every other step of the tail is a no-op, and the
    result equals the unfused run's up to rounding. A 70-channel input cannot be mapped in the
    output stage (not a multiple of 64): the zero-pad keeps its pass, the rest still fuses. A
    tiled long shortcut is added through its map by the epilogue."""
    from pocketbnn.engine import executor
    rng = np.random.default_rng(2)
    graph = _pokeconv_graph(out_c, in_c, tiled)
    x = rng.standard_normal(graph.inputs[0].shape).astype(np.float32)
    r = rng.standard_normal(graph.inputs[1].shape).astype(np.float32)
    fused = engine.from_bytes(engine.to_bytes(graph), num_threads=threads)
    steps = fused._plan((x.shape, r.shape)).steps
    mapped = in_c % 64 == 0
    expected = ({"add1", "add2", "act", "se", "bn", "se_pool"} | ({"pad"} if mapped else set())
                | ({"tile"} if tiled else set()))
    assert {t.node_name for t in steps if t.fused} == expected
    names = [t.node_name for t in steps]
    conv, pack = steps[names.index("conv")], steps[names.index("q")]
    assert conv.then is steps[names.index("se")] and names.index("conv") > names.index("se_sig")
    assert pack.means_into == steps[names.index("se_pool")].outputs[0] and any(pack.op.pads)
    got = fused.run([x, r])
    monkeypatch.setattr(executor._Plan, "_fuse_epilogues", lambda plan: None)
    monkeypatch.setattr(executor._Plan, "_fuse_squeezes_into_packing", lambda plan: None)
    plain = engine.from_bytes(engine.to_bytes(graph), num_threads=threads)
    assert not any(t.then or t.means_into for t in plain._plan((x.shape, r.shape)).steps)
    np.testing.assert_allclose(got, plain.run([x, r]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("keepdims", [False, True])
def test_squeeze_before_the_packing_moves_the_packing_up(isa, keepdims, monkeypatch):
    """A global average pool listed before the packing of the same map still fuses: the packing
    runs at the pool's place, writing the means its readers need, and the result is the unfused
    run's. A second pool of the map stays a pass of its own (one packing writes one set of means)."""
    from pocketbnn import kernels
    from pocketbnn.engine import Graph, InputSpec, Node, executor
    rng = np.random.default_rng(9)
    w = kernels.pack_bits(rng.standard_normal((8, 1, 1, 70)).astype(np.float32))
    graph = Graph([InputSpec("x", (2, 6, 5, 70))], [
        Node("pool", "global_avgpool", ["x"], ["m"], {"keepdims": keepdims}),
        Node("pool2", "global_avgpool", ["x"], ["m2"], {"keepdims": keepdims}),
        Node("sum", "add", ["m", "m2"], ["g"]),
        Node("q", "quantize", ["x"], ["p"]),
        Node("conv", "bconv2d", ["p"], ["y"], {"kernel": [1, 1], "channels_in": 70},
             {"weights": w, "multiplier": np.ones(8, np.float32)}),
    ], ["y", "g"], {"name": "squeeze-first"})
    x = rng.standard_normal((2, 6, 5, 70)).astype(np.float32)
    fused = engine.from_bytes(engine.to_bytes(graph))
    steps = fused._plan((x.shape,)).steps
    names = [t.node_name for t in steps]
    assert names.index("q") < names.index("sum") and [t.node_name for t in steps if t.fused] == ["pool"]
    got = fused.run([x])
    monkeypatch.setattr(executor._Plan, "_fuse_squeezes_into_packing", lambda plan: None)
    want = engine.from_bytes(engine.to_bytes(graph)).run([x])
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got[1].reshape(2, 70), 2 * x.astype(np.float64).mean(axis=(1, 2)), atol=1e-5)

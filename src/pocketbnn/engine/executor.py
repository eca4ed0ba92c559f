"""The interpreter: builds ops once, plans buffers once per input shape, runs nodes in order.

Memory plan. For each distinct input shape the interpreter infers every value's spec and
allocates, per *workspace*, the values' buffers plus each op's scratch buffers; values whose
lifetimes do not overlap share memory (``_Plan._assign_arenas``), so the working set of a run
stays small. A run borrows
a workspace from a pool and returns it afterwards, so the steady state allocates nothing but the
copies of the outputs it returns. Concurrent ``run`` calls from several threads each borrow
their own workspace (the pool grows to the number of simultaneous calls); ops are read-only
after construction. The total planned size is checked against ``max_plan_bytes`` before
anything is allocated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from pocketbnn.engine.errors import ModelFormatError
from pocketbnn.engine.graph import Graph
from pocketbnn.engine.ops import OPS, Op, TensorSpec
from pocketbnn.engine.ops.base import F32

DEFAULT_MAX_PLAN_BYTES = 1 << 30


@dataclass
class _Step:
    op: Op
    node_name: str
    inputs: list[int]
    outputs: list[int]
    scratch: list[TensorSpec]
    relu_into: int | None = None   # fused with the next step, a ReLU: write its output directly
    affine_into: int | None = None  # fused with the next step, a scale_shift: write its output,
    affine: Op | None = None        # applying that op's scale and shift in the kernel
    add_into: int | None = None    # fused with the next step, an add: write its output directly,
    residual: int | None = None    # adding this value (the add's other input) in the kernel
    residual_map: str | None = None  # ... through this channel map (a fused channel tile / zero-pad)
    addend: int | None = None      # an earlier add done here: add this value to inputs[0] first
    before: Op | None = None       # an earlier per-channel op done here (by an SE gate's mul), first
    then: _Step | None = None      # a later per-channel pass done here, on the output as it is written
    then_addend: tuple[int, str] | None = None  # ... after adding this value through this channel map
    means_into: int | None = None  # a packing that also writes its input's channel means (a fused squeeze)
    fused: bool = False            # done by another step: nothing to run

    @property
    def reads(self) -> list[int]:
        own = self.inputs + [v for v in (self.residual, self.addend) if v is not None]
        if self.then_addend is not None:
            own.append(self.then_addend[0])
        return own + self.then.reads if self.then is not None else own

    @property
    def writes(self) -> list[int]:
        """The values this step's kernel writes: its outputs, or the output of the last step
        fused into it (none if it is itself fused)."""
        if self.fused:
            return []
        return self._made() + ([self.means_into] if self.means_into is not None else [])

    def _made(self) -> list[int]:
        if self.then is not None:
            return self.then._made()
        into = next((v for v in (self.relu_into, self.add_into, self.affine_into) if v is not None), None)
        return [into] if into is not None else self.outputs


def _noop() -> None:
    pass


class _Plan:
    """Value specs and steps for one tuple of input shapes, and its pool of workspaces."""

    def __init__(self, interp: Interpreter, shapes: tuple[tuple[int, ...], ...]) -> None:
        graph = interp.graph
        specs: dict[str, TensorSpec] = {i.name: TensorSpec(s, F32) for i, s in zip(graph.inputs, shapes)}
        self.index = {i.name: k for k, i in enumerate(graph.inputs)}
        self.steps: list[_Step] = []
        total = 0
        for node, op in zip(graph.nodes, interp.ops):
            try:
                outs = op.infer([specs[v] for v in node.inputs])
                scratch = op.scratch([specs[v] for v in node.inputs])
            except ModelFormatError as e:
                raise ModelFormatError(f"node {node.name!r} ({node.op}): {e}") from None
            if len(outs) != len(node.outputs):
                raise ModelFormatError(f"node {node.name!r} ({node.op}) makes {len(outs)} outputs, graph names {len(node.outputs)}")
            for v, s in zip(node.outputs, outs):
                specs[v] = s
                self.index[v] = len(self.index)
            total += sum(s.nbytes for s in outs) + sum(s.nbytes for s in scratch)
            if total > interp.max_plan_bytes:
                raise ModelFormatError(f"buffers for input shapes {shapes} exceed {interp.max_plan_bytes} bytes "
                                       f"(at node {node.name!r}); raise max_plan_bytes if this is intended")
            self.steps.append(_Step(op, node.name, [self.index[v] for v in node.inputs],
                                    [self.index[v] for v in node.outputs], scratch))
        self.specs = specs
        self.value_specs = [None] * len(self.index)
        for v, k in self.index.items():
            self.value_specs[k] = specs[v]
        self.num_inputs = len(graph.inputs)
        self.outputs = [self.index[v] for v in graph.outputs]
        self._fuse_mapped_residual_adds()
        self._fuse_residual_adds()
        self._fuse_relus()
        self._fuse_scale_shifts()
        self._fuse_adds_into_stages()
        self._fuse_stages_into_gates()
        self._fuse_epilogues()
        self._fuse_squeezes_into_packing()
        self._assign_arenas()
        self.nbytes = sum(self.arena_bytes) + sum(s.nbytes for step in self.steps for s in step.scratch)
        self._pool: list[tuple[list, list]] = []
        self._lock = threading.Lock()

    def _readers(self) -> dict[int, int]:
        """How many steps read each value (as an input, residual or addend; a fused step reads
        nothing, what it read being read by the step doing its work)."""
        readers: dict[int, int] = {}
        for step in self.steps:
            for i in [] if step.fused else step.reads:
                readers[i] = readers.get(i, 0) + 1
        return readers

    def _fusable_pairs(self):
        """(a, b, x): consecutive steps where a's single output x is read by b only and is not
        a graph output, so a may write b's result instead."""
        readers = self._readers()
        outputs = set(self.outputs)
        for a, b in zip(self.steps, self.steps[1:]):
            if (not a.fused and not b.fused and a.relu_into is None and a.add_into is None
                    and a.affine_into is None and len(a.outputs) == 1 and a.outputs[0] in b.inputs
                    and readers[a.outputs[0]] == 1 and a.outputs[0] not in outputs):
                yield a, b, a.outputs[0]

    def _fuse_mapped_residual_adds(self) -> None:
        """An add of an op's output and a channel tile / zero-pad of a value x, each read by the
        add only (PokeBNN's shortcuts): when the op can add x through the map in its output stage
        (``can_fuse_mapped_add``, a binary conv) and x is ready before the op runs, the op writes
        the add's output, and the map and the add become no-ops: one pass over the output, not
        two."""
        readers = self._readers()
        outputs = set(self.outputs)
        made_by = {v: k for k, step in enumerate(self.steps) for v in step.outputs}
        for add in self.steps:
            if add.op.name != "add" or add.fused or len(add.inputs) != 2 or add.inputs[0] == add.inputs[1]:
                continue
            for y, m in (add.inputs, add.inputs[::-1]):
                if any(readers.get(v) != 1 or v in outputs or v not in made_by for v in (y, m)):
                    continue
                a, c = self.steps[made_by[y]], self.steps[made_by[m]]
                if (c.op.residual_map is None or a.fused or c.fused or len(a.outputs) != 1
                        or a.add_into is not None or c.add_into is not None
                        or self.value_specs[y] != self.value_specs[add.outputs[0]]):
                    continue
                x = c.inputs[0]
                if made_by.get(x, -1) >= made_by[y] or not a.op.can_fuse_mapped_add(
                        [self.value_specs[v] for v in a.inputs], self.value_specs[x], c.op.residual_map):
                    continue
                a.add_into, a.residual, a.residual_map = add.outputs[0], x, c.op.residual_map
                add.fused = c.fused = True
                break

    def _fuse_residual_adds(self) -> None:
        """An add of two same-shape values, one of them, y, read by the add only and made by an
        op with a ``bind_residual`` (a binary conv with float output, a channel map's pass):
        that op adds the other operand in its output stage and writes the add's output; the add
        step becomes a no-op. If the other operand is made after the op, the op's step moves to
        just before the add. When both operands qualify, the one whose op can also run an
        epilogue (a binary conv) is taken, so that the per-channel pass after the add can join
        it too (PokeBNN's channel-average shortcut, made after the conv). Not when a ReLU
        follows the add (add + ReLU are then one pass of the add kernel)."""
        relu_next = {id(b) for b, c, x in self._fusable_pairs() if self._relu_fuses(b, c, x)}
        readers = self._readers()
        outputs = set(self.outputs)
        for add in list(self.steps):
            if (add.op.name != "add" or add.fused or len(add.inputs) != 2 or add.inputs[0] == add.inputs[1]
                    or id(add) in relu_next):
                continue
            made_by = {v: step for step in self.steps for v in step.writes}
            found = []
            for y, other in (add.inputs, add.inputs[::-1]):
                a = made_by.get(y)
                if (a is not None and readers.get(y) == 1 and y not in outputs and a.writes == a.outputs == [y]
                        and a.then is None
                        and self.value_specs[other] == self.value_specs[y] == self.value_specs[add.outputs[0]]
                        and a.op.can_fuse_add([self.value_specs[i] for i in a.inputs])):
                    found.append((a.op.can_fuse_epilogue([self.value_specs[i] for i in a.inputs]), a, other))
            if not found:
                continue
            _, a, other = max(found, key=lambda f: f[0])
            a.add_into, a.residual, add.fused = add.outputs[0], other, True
            if other in made_by and self.steps.index(made_by[other]) > self.steps.index(a):
                self.steps.remove(a)
                self.steps.insert(self.steps.index(add), a)

    def _fuse_relus(self) -> None:
        """A ReLU whose input is made by the step just before it (an op with a ``bind_relu``,
        e.g. add or a conv with bias) and read by nothing else runs inside that op's kernel,
        which then writes the ReLU's output; the ReLU step becomes a no-op."""
        for a, b, x in self._fusable_pairs():
            if self._relu_fuses(a, b, x):
                a.relu_into, b.fused = b.outputs[0], True

    def _fuse_scale_shifts(self) -> None:
        """A scale_shift whose input is made by the step just before it (an op with a
        ``bind_scale_shift``: an SE gate's mul, itself the per-channel kernel) and read by nothing
        else is applied in that op's kernel: PokeBNN's gate then BatchNorm in one pass."""
        for a, b, x in self._fusable_pairs():
            if b.op.name == "scale_shift" and a.op.can_fuse_scale_shift([self.value_specs[i] for i in a.inputs]):
                a.affine_into, a.affine, b.fused = b.outputs[0], b.op, True

    def _absorbable(self) -> dict[int, _Step]:
        """Steps another step may do instead, by the value they make: one output, read by one
        step only and not a graph output, and nothing fused into or onto them yet."""
        readers = self._readers()
        outputs = set(self.outputs)
        return {step.outputs[0]: step for step in self.steps
                if len(step.outputs) == 1 and readers.get(step.outputs[0]) == 1 and step.outputs[0] not in outputs
                and not step.fused and step.relu_into is None and step.add_into is None
                and step.affine_into is None and step.before is None}

    def _fuse_adds_into_stages(self) -> None:
        """An add of two same-shape maps whose sum only a per-channel op (BN, ReLU, clamp, the
        PReLU family) reads is done by that op's pass, which reads both operands: PokeBNN's
        shortcut add before its DPReLU. The add step becomes a no-op."""
        for x, a in self._absorbable().items():
            b = next((s for s in self.steps if x in s.inputs), None)
            if (b is not None and a.op.name == "add" and a.addend is None and b.inputs == [x] and b.addend is None
                    and b.op.channel_stage(self.value_specs[x].shape[-1]) is not None
                    and not b.fused and b.relu_into is None and b.add_into is None and b.affine_into is None
                    and self.value_specs[a.inputs[0]] == self.value_specs[a.inputs[1]] == self.value_specs[x]):
                b.inputs, b.addend = [a.inputs[0]], a.inputs[1]
                a.inputs, a.fused = [], True

    def _fuse_stages_into_gates(self) -> None:
        """A per-channel op whose output only an SE gate's product reads (PokeBNN's DPReLU, then
        the gate) is done by the product's pass: the mul reads the op's input (and the op's
        addend) and applies its stage before the gate. The op's step becomes a no-op; the mul's
        fused scale_shift, if any, stays fused."""
        for x, a in self._absorbable().items():
            b = next((s for s in self.steps if x in s.inputs), None)
            if (b is None or a.op.channel_stage(self.value_specs[x].shape[-1]) is None or b.op.name != "mul" or b.fused
                    or b.before is not None or b.addend is not None or b.relu_into is not None
                    or b.add_into is not None or x not in b.inputs[:2] or b.inputs[0] == b.inputs[1]
                    or not b.op.can_fuse_scale_shift([self.value_specs[i] for i in b.inputs])
                    or self.value_specs[x].shape != self.value_specs[b.outputs[0]].shape):  # x: the map, not the gate
                continue
            # The map first: on 1x1 maps it has the gate's shape, and Mul.bind_gate takes the first.
            b.inputs = [a.inputs[0], b.inputs[1] if b.inputs[0] == x else b.inputs[0]]
            b.before, b.addend = a.op, a.addend
            a.inputs, a.addend, a.fused = [], None, True

    def _fuse_epilogues(self) -> None:
        """A per-channel pass (``pass_map``: a stage op, or an SE gate's mul with the stages
        fused into it) over a map that only it reads, written by an op that can run such a pass
        on its output (``can_fuse_epilogue``, a binary conv): that op runs the pass on each
        block of its output as it writes it, while the block is in cache, and writes the pass's
        output; the pass's step becomes a no-op. The op's step moves to just before the pass's,
        as what the pass reads besides the map (an SE gate computed from the op's input) may
        be made in between. When the map is instead a channel tile / zero-pad of a value r plus
        the op's output (a channel map's pass that took the add: PokeBNN's long shortcut in a
        downsampling block) and the pass adds nothing itself, the op adds r through the map
        before the pass, and the map's step becomes a no-op too."""
        readers = self._readers()
        outputs = set(self.outputs)
        for p in list(self.steps):
            if p.fused or p.relu_into is not None or p.add_into is not None or len(p.outputs) != 1:
                continue
            k = p.op.pass_map([self.value_specs[v] for v in p.inputs[:2]])
            if k is None:
                continue
            x = p.inputs[k]
            c = next((step for step in self.steps if step.writes == [x]), None)
            if c is None or readers.get(x) != 1 or x in outputs or self.value_specs[x] != self.value_specs[p.outputs[0]]:
                continue
            mapped = None
            if (c.op.residual_map is not None and c.add_into == x and p.addend is None
                    and readers.get(c.residual) == 1 and c.residual not in outputs):
                mapped, c = c, next((step for step in self.steps if step.writes == [c.residual]), None)
            if (c is None or c.then is not None or c.relu_into is not None or c.affine_into is not None
                    or not c.op.can_fuse_epilogue([self.value_specs[v] for v in c.inputs])):
                continue
            c.then, p.fused = p, True
            if mapped is not None:
                c.then_addend, mapped.fused = (mapped.inputs[0], mapped.op.residual_map), True
            self.steps.remove(c)
            self.steps.insert(self.steps.index(p), c)

    def _fuse_squeezes_into_packing(self) -> None:
        """A global average pool of a map that is also bit-packed (an SE squeeze of a binary
        conv's input, as in every PokeConv) is done by the packing, which reads the map anyway
        and writes the channel means too: one pass over the map, not two. The pool's step
        becomes a no-op; the packing's step moves up to the pool's place if it came later."""
        for pool in list(self.steps):
            if pool.op.name != "global_avgpool" or pool.fused or pool.relu_into is not None:
                continue
            pack = next((step for step in self.steps if step.op.name == "quantize" and step.inputs == pool.inputs
                         and not step.fused and step.means_into is None), None)
            if pack is None:
                continue
            pack.means_into, pool.fused = pool.outputs[0], True
            if self.steps.index(pack) > self.steps.index(pool):
                self.steps.remove(pack)
                self.steps.insert(self.steps.index(pool), pack)

    def _relu_fuses(self, a: _Step, b: _Step, x: int) -> bool:
        return b.op.name == "relu" and b.inputs == [x] and a.op.can_fuse_relu([self.value_specs[i] for i in a.inputs])

    def _assign_arenas(self) -> None:
        """Share memory between values whose lifetimes do not overlap, so a run's working set
        stays small (cache-resident) instead of touching one fresh buffer per value.

        Values are placed in byte arenas in step order, each when the step that writes it runs
        (``_Step.writes``; a value that fusion left unwritten gets none); a value's arena is free
        again after the last step reading it (never during the step that writes the step's
        outputs, so an op's outputs never alias its inputs). Graph outputs get arenas of their
        own."""
        live = [step for step in self.steps if not step.fused]
        last_use: dict[int, int] = {}
        for k, step in enumerate(live):
            for i in step.reads:
                last_use[i] = k
        outputs = set(self.outputs)
        self.arena_bytes: list[int] = []
        self.arena_of: list[int | None] = [None] * len(self.value_specs)
        free: list[int] = []
        for k, step in enumerate(live):
            for v in step.writes:
                need = self.value_specs[v].nbytes
                if v not in outputs and free:
                    fits = [a for a in free if self.arena_bytes[a] >= need]
                    a = min(fits, key=self.arena_bytes.__getitem__) if fits else max(free, key=self.arena_bytes.__getitem__)
                    free.remove(a)
                    self.arena_bytes[a] = max(self.arena_bytes[a], need)
                else:
                    a = len(self.arena_bytes)
                    self.arena_bytes.append(need)
                self.arena_of[v] = a
            for v in set(step.reads) | set(step.writes):
                if (v >= self.num_inputs and v not in outputs and self.arena_of[v] is not None
                        and last_use.get(v, -1) <= k):
                    free.append(self.arena_of[v])

    def acquire(self) -> _Workspace:
        with self._lock:
            if self._pool:
                return self._pool.pop()
        arenas = [np.empty(max(n, 1), np.uint8) for n in self.arena_bytes]
        env = [None] * self.num_inputs + [
            arenas[self.arena_of[v]][:s.nbytes].view(s.dtype).reshape(s.shape) if self.arena_of[v] is not None else None
            for v, s in enumerate(self.value_specs) if v >= self.num_inputs]
        scratch = [[np.full(s.shape, step.op.scratch_fill, s.dtype) if s.dtype.kind == "f" else np.zeros(s.shape, s.dtype)
                    for s in step.scratch] for step in self.steps]
        # Buffers never move, so every step is bound once here; steps that read a graph input
        # (a new array each run) are bound per run.
        calls: list = []
        late: list[int] = []
        for k, step in enumerate(self.steps):
            if any(i < self.num_inputs for i in step.reads):
                calls.append(None)
                late.append(k)
            else:
                calls.append(self.bind(step, env, scratch[k]))
        return _Workspace(env, scratch, calls, late)

    @staticmethod
    def bind(step: _Step, env: list, scratch: list):
        if step.fused:
            return _noop
        ins = [env[i] for i in step.inputs]
        if step.then is not None:  # an op running a later per-channel pass on its output
            p, out = step.then, env[step.writes[0]]
            # The pass's map is never written (it has no buffer); its output, of the same shape,
            # stands in for it.
            p_ins = [out if env[i] is None else env[i] for i in p.inputs]
            _, stages = p.op.channel_pass(p_ins, before=p.before, affine=p.affine)
            addend, addend_map = ((env[p.addend], None) if p.addend is not None else
                                  (env[step.then_addend[0]], step.then_addend[1]) if step.then_addend is not None else
                                  (None, None))
            return step.op.bind_epilogue(ins, out, scratch,
                                         residual=env[step.residual] if step.residual is not None else None,
                                         residual_map=step.residual_map, addend=addend, addend_map=addend_map,
                                         stages=stages)
        if step.means_into is not None:
            return step.op.bind_means(ins, [env[i] for i in step.outputs], env[step.means_into])
        if step.relu_into is not None:
            return step.op.bind_relu(ins, [env[step.relu_into]], scratch)
        if step.add_into is not None and step.residual_map is not None:
            return step.op.bind_mapped_residual(ins, [env[step.add_into]], scratch, env[step.residual],
                                                step.residual_map)
        if step.add_into is not None:
            return step.op.bind_residual(ins, [env[step.add_into]], scratch, env[step.residual])
        addend = env[step.addend] if step.addend is not None else None
        if step.before is not None:  # an SE gate's mul doing a per-channel op's pass first
            out = env[step.affine_into if step.affine_into is not None else step.outputs[0]]
            return step.op.bind_gate(ins, out, before=step.before, addend=addend, affine=step.affine)
        if addend is not None:  # a per-channel op doing an add's pass first
            return step.op.bind_channel(ins, [env[i] for i in step.outputs], scratch, addend=addend)
        if step.affine_into is not None:
            return step.op.bind_scale_shift(ins, [env[step.affine_into]], scratch, step.affine)
        return step.op.bind(ins, [env[i] for i in step.outputs], scratch)

    def release(self, workspace: _Workspace) -> None:
        env, calls = workspace.env, workspace.calls
        for k in range(self.num_inputs):
            env[k] = None
        for k in workspace.late:
            calls[k] = None
        with self._lock:
            self._pool.append(workspace)


class _Workspace(NamedTuple):
    """One set of buffers (values, per-step scratch) and the steps bound to them."""

    env: list
    scratch: list
    calls: list
    late: list[int]


@dataclass
class OpTiming:
    """One node's share of a profiled run."""

    node: str
    op: str
    output_shape: tuple[int, ...]
    ms: float


@dataclass
class Profile:
    """Per-op median latencies of ``repeats`` runs, and the whole run's median."""

    ops: list[OpTiming]
    total_ms: float
    repeats: int

    @property
    def ops_ms(self) -> float:
        return sum(t.ms for t in self.ops)

    def by_op_type(self) -> dict[str, float]:
        """Milliseconds per op type, largest first."""
        acc: dict[str, float] = {}
        for t in self.ops:
            acc[t.op] = acc.get(t.op, 0.0) + t.ms
        return dict(sorted(acc.items(), key=lambda kv: -kv[1]))


def padding_into_packing(graph: Graph) -> dict[str, dict]:
    """Attribute overrides (node name -> attrs) that move a one-padded binary conv's padding into
    the packing before it: when a ``quantize`` output is read only by a ``bconv2d`` with
    ``pad_value`` 1 and nonzero ``pads``, the quantize writes the padded image (zero words, the
    +1 values of one-padding) and the conv reads it with no padding, so the conv's kernel makes
    no padded copy of its input (a serial step of every call). The graph itself is unchanged."""
    readers: dict[str, list] = {}
    for node in graph.nodes:
        for v in node.inputs:
            readers.setdefault(v, []).append(node)
    outputs = set(graph.outputs)
    overrides: dict[str, dict] = {}
    for q in graph.nodes:
        if q.op != "quantize" or "pads" in q.attrs or len(q.outputs) != 1 or q.outputs[0] in outputs:
            continue
        conv = readers.get(q.outputs[0], [])
        if len(conv) != 1 or conv[0].op != "bconv2d" or conv[0].attrs.get("pad_value", 1) != 1:
            continue
        pads = conv[0].attrs.get("pads")
        # Malformed attributes are left for the ops to reject with their own errors.
        if not (isinstance(pads, list) and len(pads) == 4 and all(type(p) is int and p >= 0 for p in pads)
                and any(pads)):
            continue
        overrides[q.name] = {**q.attrs, "pads": list(pads)}
        overrides[conv[0].name] = {**conv[0].attrs, "pads": [0, 0, 0, 0]}
    return overrides


class Interpreter:
    """Runs an engine graph on numpy arrays; see the module docstring for memory and threads.

    Args:
        graph: a validated :class:`~pocketbnn.engine.graph.Graph`.
        num_threads: threads each binary kernel may use.
        max_plan_bytes: refuse to plan buffers larger than this (guards against malicious files
            and mistaken input sizes).

    Raises:
        ModelFormatError: an op is unknown, its attributes or parameters are invalid, or the
            shapes do not fit together for the graph's declared input shapes.
    """

    def __init__(self, graph: Graph, *, num_threads: int = 1, max_plan_bytes: int = DEFAULT_MAX_PLAN_BYTES) -> None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        self.graph = graph
        self.num_threads = num_threads
        self.max_plan_bytes = max_plan_bytes
        attrs = padding_into_packing(graph)
        self.ops = [self._build(node, attrs.get(node.name, node.attrs)) for node in graph.nodes]
        self._plans: dict[tuple, _Plan] = {}
        self._lock = threading.Lock()
        self._plan(tuple(i.shape for i in graph.inputs))

    def _build(self, node, attrs: dict) -> Op:
        cls = OPS.get(node.op)
        if cls is None:
            raise ModelFormatError(f"node {node.name!r}: unknown op {node.op!r}")
        try:
            op = cls(attrs, node.params)
        except ModelFormatError as e:
            raise ModelFormatError(f"node {node.name!r} ({node.op}): {e}") from None
        op.num_threads = self.num_threads
        return op

    def _plan(self, shapes: tuple) -> _Plan:
        plan = self._plans.get(shapes)
        if plan is None:
            with self._lock:
                plan = self._plans.get(shapes)
                if plan is None:
                    plan = self._plans[shapes] = _Plan(self, shapes)
        return plan

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        """Declared input shapes (NHWC for images); the batch size may differ at run time."""
        return [i.shape for i in self.graph.inputs]

    def _check_inputs(self, inputs) -> list[np.ndarray]:
        specs = self.graph.inputs
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        elif isinstance(inputs, Mapping):
            missing = [s.name for s in specs if s.name not in inputs]
            if missing:
                raise ValueError(f"missing inputs {missing}; the model takes {[s.name for s in specs]}")
            inputs = [inputs[s.name] for s in specs]
        elif not isinstance(inputs, Sequence):
            raise TypeError(f"inputs must be an array, a list of arrays or a dict, got {type(inputs).__name__}")
        if len(inputs) != len(specs):
            raise ValueError(f"the model takes {len(specs)} inputs, got {len(inputs)}")
        arrays = []
        for spec, x in zip(specs, inputs):
            if not isinstance(x, np.ndarray):
                raise TypeError(f"input {spec.name!r} must be a numpy array, got {type(x).__name__}")
            if x.dtype != np.float32:
                raise ValueError(f"input {spec.name!r} must be float32, got {x.dtype}")
            if x.ndim != len(spec.shape) or x.shape[1:] != spec.shape[1:] or x.shape[0] < 1:
                want = ("N",) + spec.shape[1:]
                raise ValueError(f"input {spec.name!r} has shape {x.shape}; the model expects {want} (NHWC)")
            arrays.append(np.ascontiguousarray(x))
        return arrays

    def run(self, inputs) -> np.ndarray | list[np.ndarray]:
        """Run the model; returns the output array (a list if the model has several).

        Args:
            inputs: one float32 array (NHWC for images), a list in input order, or a dict by name.

        Raises:
            ValueError, TypeError: an input has the wrong shape, dtype, type or count.
        """
        return self._execute(inputs, timings=None)

    def profile(self, inputs, repeats: int = 20, warmup: int = 3) -> Profile:
        """Per-op median latency (ms) over ``repeats`` runs after ``warmup`` runs."""
        for _ in range(warmup):
            self._execute(inputs, timings=None)
        per_op = [[] for _ in self.graph.nodes]
        totals = []
        for _ in range(repeats):
            start = time.perf_counter()
            self._execute(inputs, timings=per_op)
            totals.append((time.perf_counter() - start) * 1e3)
        plan = self._plan(tuple(x.shape for x in self._check_inputs(inputs)))
        # In the order the steps run (a fusion may move a no-op step before the one doing it).
        ops = [OpTiming(step.node_name, step.op.name, plan.value_specs[step.outputs[0]].shape, float(np.median(t)))
               for step, t in zip(plan.steps, per_op)]
        return Profile(ops, float(np.median(totals)), repeats)

    def _execute(self, inputs, timings):
        arrays = self._check_inputs(inputs)
        plan = self._plan(tuple(x.shape for x in arrays))
        workspace = plan.acquire()
        env, calls = workspace.env, workspace.calls
        try:
            env[:len(arrays)] = arrays
            for k in workspace.late:
                step = plan.steps[k]
                calls[k] = plan.bind(step, env, workspace.scratch[k])
            if timings is None:
                for call in calls:
                    call()
            else:
                clock = time.perf_counter
                for call, times in zip(calls, timings):
                    t0 = clock()
                    call()
                    times.append((clock() - t0) * 1e3)
            results = [env[i].copy() for i in plan.outputs]
        finally:
            plan.release(workspace)
        return results[0] if len(results) == 1 else results

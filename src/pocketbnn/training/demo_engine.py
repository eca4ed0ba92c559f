"""The demo's deployment steps: convert the trained model, check the engine against torch on the
whole test set, and time both (see :mod:`pocketbnn.training.demo` for how steps are run)."""

from __future__ import annotations

import numpy as np
import torch

from pocketbnn.training.demo_steps import DemoRun, Section
from pocketbnn.training.report import plot_op_latency

__all__ = ["benchmark_step", "convert_step", "engine_check_step"]


def _nhwc(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy(), dtype=np.float32)


def convert_step(run: DemoRun) -> Section:
    """``pocketbnn.converter.convert`` the model and save it as ``model.pbnn``."""
    from pocketbnn import converter, engine

    run.model.eval()
    example = run.augment.eval(run.data.test.batch(torch.arange(1))[0])
    graph = converter.convert(run.model, example, name="quicknet-mini")
    path = run.out_dir / "model.pbnn"
    engine.save(graph, str(path))
    run.engine = engine.load(str(path), num_threads=torch.get_num_threads())
    ops: dict[str, int] = {}
    for node in graph.nodes:
        ops[node.op] = ops.get(node.op, 0) + 1
    float_bytes = sum(t.numel() * 4 for t in run.model.state_dict().values() if t.is_floating_point())
    size = path.stat().st_size
    run.summary["engine_model_bytes"] = size
    print(f"converted to {path} ({size:,} bytes; float32 torch weights {float_bytes:,} bytes)")
    return "Conversion", f"""
`pocketbnn.converter.convert` turned the model into an engine graph of {len(graph.nodes)} ops
({', '.join(f'{n} {op}' for op, n in ops.items())}): binary convs with bit-packed weights and
BatchNorm folded in. `model.pbnn` is {size:,} bytes (the float32 torch weights: {float_bytes:,} bytes).
"""


def engine_check_step(run: DemoRun) -> Section:
    """Predictions of the engine and of torch on every test image; they must agree."""
    agree = correct = total = 0
    max_diff = 0.0
    with torch.no_grad():
        for start in range(0, len(run.data.test), 500):
            x, y = run.data.test.batch(torch.arange(start, min(start + 500, len(run.data.test))))
            x = run.augment.eval(x)
            reference = run.model(x).numpy()
            logits = run.engine.run(_nhwc(x))
            agree += int((logits.argmax(1) == reference.argmax(1)).sum())
            correct += int((logits.argmax(1) == y.numpy()).sum())
            total += len(y)
            max_diff = max(max_diff, float(np.abs(logits - reference).max()))
    run.summary.update(engine_agreement=agree / total, engine_accuracy=correct / total,
                       engine_max_logit_difference=max_diff)
    print(f"engine vs torch: same prediction on {agree}/{total} test images ({agree / total:.2%}); "
          f"engine accuracy {correct / total:.4f}")
    return "Engine check", f"""
On all {total} test images the engine and torch predict the same class for **{agree}**
(**{agree / total:.2%}**); engine accuracy {correct / total:.2%}; largest logit difference {max_diff:.2e}.
"""


def benchmark_step(run: DemoRun) -> Section:
    """Batch-1 latency of torch (float ops on ±1 values) and of the engine, interleaved, then
    the engine's per-op profile."""
    from pocketbnn.bench import interleaved

    threads = torch.get_num_threads()
    x = run.augment.eval(run.data.test.batch(torch.arange(1))[0])
    x_nhwc = _nhwc(x)

    def torch_call():
        with torch.no_grad():
            run.model(x)

    stats = interleaved({"torch": torch_call, "engine": lambda: run.engine.run(x_nhwc)}, rounds=200,
                        min_seconds=3.0)
    profile = run.engine.profile(x_nhwc, repeats=100)
    by_op = profile.by_op_type()
    plot_op_latency(by_op, run.out_dir / "op_latency.png")
    t, e = stats["torch"].median * 1e3, stats["engine"].median * 1e3
    run.summary["latency_ms"] = {"torch": t, "engine": e, "threads": threads}
    print(f"batch-1 latency, {threads} thread(s): torch {t:.3f} ms, engine {e:.3f} ms ({t / e:.1f}x)")
    rows = "\n".join(f"| {op} | {ms:.4f} | {ms / profile.ops_ms:.0%} |" for op, ms in by_op.items())
    return "Latency", f"""
One image, {threads} thread(s), {stats['engine'].samples} interleaved rounds (median, p10–p90):

| runtime | median ms | p10 ms | p90 ms |
|---|---|---|---|
| torch (float ops on ±1 values) | {t:.3f} | {stats['torch'].p10 * 1e3:.3f} | {stats['torch'].p90 * 1e3:.3f} |
| pocketbnn engine | {e:.3f} | {stats['engine'].p10 * 1e3:.3f} | {stats['engine'].p90 * 1e3:.3f} |

Engine per op type ({profile.repeats} runs, median ms):

![per-op latency](op_latency.png)

| op | ms | share |
|---|---|---|
{rows}
"""

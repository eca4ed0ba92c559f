"""Zoo models at 224x224, batch 1, 1000 classes: torch (fp32, channels_last, inference_mode,
eval) vs the pocketbnn engine at 1 and 2 threads; engine file size vs the cost model's size.

Each engine thread count runs in its own subprocess with OPENBLAS_NUM_THREADS set to the same
count, so the float layers' BLAS uses the same threads as the binary kernels.

    python benchmarks/models_bench.py --models quicknet --threads 1,2 --json out.json --md out.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

_ENGINE_SNIPPET = """
import json, sys, time, numpy as np
from pocketbnn import engine
interp = engine.load(sys.argv[1], num_threads=int(sys.argv[2]))
x = np.random.default_rng(0).standard_normal((1, 224, 224, 3)).astype(np.float32)
profile = interp.profile(x, repeats=int(sys.argv[3]), warmup=3)
binary = sum(t.ms for t in profile.ops if t.op in ("bconv2d", "bmaxpool2d", "quantize"))
print(json.dumps({"ms": profile.total_ms, "ops_ms": profile.ops_ms, "binary_ms": binary,
                  "by_op": profile.by_op_type()}))
"""


def _median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def bench(name: str, threads: list[int], repeats: int) -> dict:
    import torch

    from pocketbnn import converter, cost, engine, models

    torch.manual_seed(0)
    model = models.get_model(name, num_classes=1000).eval()
    x = torch.randn(1, 3, 224, 224)
    graph = converter.convert(model, x, name=name)
    # fp_bits=32: the file stores float layers as float32.
    record = {"model": name, "cost_model_mib": cost.profile(model, (3, 224, 224), fp_bits=32).size_mib}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.pbnn")
        engine.save(graph, path)
        record["file_mib"] = os.path.getsize(path) / 2**20
        torch.set_num_threads(1)
        cl = model.to(memory_format=torch.channels_last)
        xc = x.to(memory_format=torch.channels_last)
        with torch.inference_mode():
            record["torch_ms_1t"] = _median_ms(lambda: cl(xc), repeats)
        for t in threads:
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(t), OMP_NUM_THREADS=str(t))
            out = subprocess.run([sys.executable, "-c", _ENGINE_SNIPPET, path, str(t), str(repeats)],
                                 capture_output=True, text=True, env=env, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            record[f"engine_ms_{t}t"] = result["ms"]
            record[f"outside_ops_pct_{t}t"] = 100 * (result["ms"] - result["ops_ms"]) / result["ms"]
            record[f"binary_ms_{t}t"] = result["binary_ms"]
            record[f"by_op_{t}t"] = result["by_op"]
        record["speedup_1t"] = record["torch_ms_1t"] / record[f"engine_ms_{threads[0]}t"]
    return record


def markdown(records: list[dict], threads: list[int], command: str) -> str:
    head = ["model", "torch 1t ms"] + [f"engine {t}t ms" for t in threads] + \
           ["speedup 1t", "outside ops % (1t)", "file MiB", "cost-model MiB"]
    lines = [f"Command: `{command}`", "", f"Machine: {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs, {platform.platform()}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        row = [r["model"], f"{r['torch_ms_1t']:.1f}"] + [f"{r[f'engine_ms_{t}t']:.1f}" for t in threads] + [
            f"{r['speedup_1t']:.1f}x", f"{r[f'outside_ops_pct_{threads[0]}t']:.1f}", f"{r['file_mib']:.2f}",
            f"{r['cost_model_mib']:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="quicknet-small,quicknet,quicknet-large,birealnet-18,reactnet-a")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", default="benchmarks/results/models.json")
    parser.add_argument("--md", default="benchmarks/results/models.md")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    records = []
    for name in args.models.split(","):
        records.append(bench(name, threads, args.repeats))
        print(json.dumps({k: v for k, v in records[-1].items() if not k.startswith("by_op")}), flush=True)
    with open(args.json, "w") as f:
        json.dump(records, f, indent=1)
    with open(args.md, "w") as f:
        f.write(markdown(records, threads, "python " + " ".join(sys.argv)))


if __name__ == "__main__":
    main()

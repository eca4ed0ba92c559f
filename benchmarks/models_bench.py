"""Zoo models at 224x224, batch 1, 1000 classes: torch (fp32, channels_last, inference_mode,
eval, 1 thread) vs the pocketbnn engine at 1 and 2 threads; engine file size vs the cost model's.

Torch and the engine run in one process, interleaved round by round in a shuffled order
(``pocketbnn.bench.timing.interleaved``), so machine noise hits every column alike; the table
reports medians. A torch sample is one call; an engine sample is the mean of 5 back-to-back runs
after an untimed one, the steady state of a deployed model (a run right after 100+ ms of torch
finds its weights evicted from cache and its thread pool asleep). Single-thread
columns also report thread CPU time (``time.thread_time``), which excludes time the VM spends
on other work, and the speed-up is given on both clocks. numpy's OpenBLAS is pinned to 1 thread
(``OPENBLAS_NUM_THREADS=1``, set before numpy loads) so that its idle threads never compete with
the engine's; the engine's threads are its own pool (binary kernels, float ops, and the row
bands of its float GEMMs, each an OpenBLAS sgemm call on one thread).

"2t vs 1t" is the median over rounds of the 1-thread run's time over the 2-thread run's in the
same round (the VM's speed drifts over minutes; adjacent runs see the same machine).
"(machine)" beside the engine's thread scaling is the binary peak loop's own (measured on 1 and
2 pool threads in the same rounds): on the shared VM the second vCPU's share changes over minutes.

"outside kernels %" is the engine's dispatch cost: a run with every compiled kernel replaced
by a no-op (in a subprocess), over the real run's thread CPU time.

    python benchmarks/models_bench.py --models quicknet --threads 1,2 --json out.json --md out.md
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy is imported (see the module docstring)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

from pocketbnn import _core  # noqa: E402
from pocketbnn.bench.timing import interleaved, machine_info, paired_ratio  # noqa: E402

_DISPATCH_SNIPPET = """
import json, sys, time, numpy as np
from pocketbnn import _core, engine
noop = lambda *a, **k: None
# Every compiled function a run calls is a kernel; the rest configure, measure or pack at load.
setup = {"active_isa", "available_isas", "has_blas", "list_ukernels", "measure_binary_peak",
         "measure_binary_peak_threads", "measure_clock_ghz", "pack_bconv2d_weights",
         "selected_ukernel", "set_blas", "set_isa"}
for f in dir(_core):
    if not f.startswith("_") and f not in setup and callable(getattr(_core, f)) and f[0].islower():
        setattr(_core, f, noop)
_core.PreparedBconv2d.run_float = _core.PreparedBconv2d.run_bits = noop
interp = engine.load(sys.argv[1], num_threads=1)
x = np.zeros((1, 224, 224, 3), np.float32)
for _ in range(5):
    interp.run(x)
times = []
for _ in range(int(sys.argv[2])):
    t0 = time.thread_time()
    interp.run(x)
    times.append(time.thread_time() - t0)
print(json.dumps({"dispatch_ms": float(np.median(times)) * 1e3}))
"""


ENGINE_REPEAT = 5


def bench(name: str, threads: list[int], repeats: int) -> dict:
    import torch

    from pocketbnn import converter, engine, models
    from pocketbnn.cost.profile import profile as cost_profile

    torch.manual_seed(0)
    model = models.get_model(name, num_classes=1000).eval()
    x = torch.randn(1, 3, 224, 224)
    graph = converter.convert(model, x, name=name)
    # fp_bits=32: the file stores float layers as float32.
    record = {"model": name, "cost_model_mib": cost_profile(model, (3, 224, 224), fp_bits=32).size_mib}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.pbnn")
        engine.save(graph, path)
        record["file_mib"] = os.path.getsize(path) / 2**20
        torch.set_num_threads(1)
        cl = model.to(memory_format=torch.channels_last)
        xc = x.to(memory_format=torch.channels_last)
        xe = np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())
        interps = {t: engine.load(path, num_threads=t) for t in threads}
        runners = {"torch": lambda: cl(xc)}
        runners.update({f"engine_{t}t": (lambda it=it: it.run(xe)) for t, it in interps.items()})
        # torch: one call per sample (100+ ms, its own steady state); engine: the mean of
        # ENGINE_REPEAT back-to-back runs after an untimed one, the steady state of a deployed
        # model rather than its first run after 100+ ms of torch evicted its caches.
        repeat = {k: 1 if k == "torch" else ENGINE_REPEAT for k in runners}
        # The machine's own thread scaling in the same rounds: the binary peak loop on t pool
        # threads at once (wall clock), what the VM's vCPUs deliver at the time.
        peaks: dict[int, list[float]] = {t: [] for t in threads}
        runners.update({f"peak_{t}t": (lambda t=t: peaks[t].append(_core.measure_binary_peak_threads(0.002, t)))
                        for t in threads})
        with torch.inference_mode():
            stats = interleaved(runners, rounds=repeats, warmup=2, repeat=repeat)
        record["machine_scaling"] = float(np.median(peaks[threads[-1]]) / np.median(peaks[threads[0]]))
        if len(threads) > 1:
            record[f"speedup_{threads[-1]}t_vs_{threads[0]}t"] = paired_ratio(
                stats[f"engine_{threads[0]}t"], stats[f"engine_{threads[-1]}t"])
        for k, st in stats.items():
            if k.startswith("peak_"):
                continue
            key = "torch_ms_1t" if k == "torch" else k.replace("engine_", "engine_ms_")
            record[key] = st.median * 1e3
            record[key.replace("_ms_", "_cpu_ms_")] = st.cpu_median * 1e3
        for t, it in interps.items():
            record[f"by_op_{t}t"] = it.profile(xe, repeats=max(5, repeats // 2), warmup=1).by_op_type()
        out = subprocess.run([sys.executable, "-c", _DISPATCH_SNIPPET, path, str(4 * repeats)],
                             capture_output=True, text=True, check=True)
        record["dispatch_ms"] = json.loads(out.stdout.strip().splitlines()[-1])["dispatch_ms"]
    t0 = threads[0]
    record["outside_kernels_pct"] = 100 * record["dispatch_ms"] / record[f"engine_cpu_ms_{t0}t"]
    record["speedup_1t"] = record["torch_ms_1t"] / record[f"engine_ms_{t0}t"]
    record["speedup_cpu_1t"] = record["torch_cpu_ms_1t"] / record[f"engine_cpu_ms_{t0}t"]
    return record


def markdown(records: list[dict], threads: list[int], command: str) -> str:
    t0 = threads[0]
    head = ["model", "torch 1t ms (cpu)"] + [f"engine {t}t ms" + (" (cpu)" if t == 1 else "") for t in threads] + \
           ["speedup 1t wall (cpu)"] + ([f"{threads[-1]}t vs {t0}t (machine)"] if len(threads) > 1 else []) + \
           ["outside kernels %", "file MiB", "cost-model MiB"]
    info = machine_info()
    lines = [f"Command: `{command}`", "",
             f"Machine: {info.get('cpu') or platform.machine()} ({info['cpus']} logical CPUs, load average "
             f"{info.get('loadavg')}), ISA {_core.active_isa()}, {platform.platform()}, commit {info['commit']}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        row = [r["model"], f"{r['torch_ms_1t']:.1f} ({r['torch_cpu_ms_1t']:.1f})"]
        row += [f"{r[f'engine_ms_{t}t']:.2f}" + (f" ({r[f'engine_cpu_ms_{t}t']:.2f})" if t == 1 else "") for t in threads]
        row += [f"{r['speedup_1t']:.1f}x ({r['speedup_cpu_1t']:.1f}x)"]
        if len(threads) > 1:
            machine = f" ({r['machine_scaling']:.2f}x)" if "machine_scaling" in r else ""
            row += [f"{r[f'speedup_{threads[-1]}t_vs_{t0}t']:.2f}x{machine}"]
        row += [f"{r['outside_kernels_pct']:.1f}", f"{r['file_mib']:.2f}", f"{r['cost_model_mib']:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="quicknet-small,quicknet,quicknet-large,birealnet-18,reactnet-a,pokebnn-1.0x")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", help="write the records here")
    parser.add_argument("--md", help="write the markdown table here")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    records = []
    for name in args.models.split(","):
        records.append(bench(name, threads, args.repeats))
        print(json.dumps({k: v for k, v in records[-1].items() if not k.startswith("by_op")}), flush=True)
    table = markdown(records, threads, "python " + " ".join(sys.argv))
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    if args.md:
        with open(args.md, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()

"""Binary convolution vs torch fp32 vs torch int8, against the machine's measured binary peak.

    python benchmarks/bconv_bench.py --json benchmarks/results/bconv.json --md benchmarks/results/bconv.md
    python benchmarks/bconv_bench.py --grid --json grid.json --md grid.md      # LCE Figure 3 grid

Layers (LCE paper, 3x3 stride 1 SAME, batch 1): A 56x56x64->64, B 28x28x128->128,
C 14x14x256->256, D 7x7x256->256. Contenders, timed interleaved (pocketbnn.bench):
  binary         pocketbnn binary conv, packed input, float output with fused multiplier/bias,
                 prepared once (kernels.Bconv2d) and writing into one output buffer, as a
                 converted model runs it
  binary+pack    the same including pack_bits of the float32 NHWC input (same threads)
  fp32           torch conv2d, channels_last, inference_mode
  int8           torch quantized Conv2d (engine x86, quint8 activations, qint8 weights,
                 prepacked), quantized channels_last input
  peak           the fastest XOR/POPCOUNT/ADD loop of the active ISA
                 (pocketbnn._core.measure_binary_peak: VPOPCNTQ on AVX-512, split-nibble lookup on AVX2),
                 interleaved with the others so that % of peak compares like with like
  peak_threads   the same loop on every thread of the row at once (measure_binary_peak_threads):
                 the yardstick of multi-thread rows and the machine's own thread scaling
The clock is estimated from a dependent-ADD chain (one per cycle), also interleaved.
Each sample is the mean of 3 back-to-back calls after an untimed one (steady state; see
pocketbnn.bench.timing), contenders interleaved round by round.

Times: every call is timed by wall clock and by the calling thread's CPU time
(pocketbnn.bench). Single-thread rows use CPU time: everything then runs on the calling thread
and time spent descheduled by other load on a shared machine is left out (the peak and clock
loops are timed the same way). Two-thread rows, and the 2T / 1T scaling, use wall time.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
import torch.ao.nn.quantized as nnq

from pocketbnn import _core, kernels
from pocketbnn.bench import interleaved, machine_info

LAYERS = {"A": (56, 64), "B": (28, 128), "C": (14, 256), "D": (7, 256)}
DENSE = {"dense 1x1024->1024": (1, 1024, 1024), "dense 64x1024->1024": (64, 1024, 1024)}
GRID_CHANNELS = (32, 64, 96, 128, 160, 256)
GRID_SIZES = (8, 16, 32, 64)
GRID_KERNELS = (3, 5)
PEAK_SECONDS = 0.002
REPEAT = 3


def contenders(size: int, channels: int, kernel: int, threads: int, with_int8: bool):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, size, size, channels)).astype(np.float32)
    w = rng.standard_normal((channels, kernel, kernel, channels)).astype(np.float32)
    xp = kernels.pack_bits(x)
    wb = kernels.BconvWeights(kernels.pack_bits(w), channels)
    m = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    b = rng.standard_normal(channels).astype(np.float32)
    pad = kernel // 2

    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    wt = torch.from_numpy(w).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    bt = torch.from_numpy(b)

    def fp32():
        with torch.inference_mode():
            torch.nn.functional.conv2d(xt, wt, bt, padding=pad)

    # Prepared once and writing into one output buffer, as a converted model runs it.
    bconv = kernels.Bconv2d(wb, xp.shape, padding="same", multiplier=m, bias=b, num_threads=threads)
    y = np.empty(bconv.output_shape, np.float32)
    out = {
        "binary": lambda: bconv(xp, out=y),
        "binary+pack": lambda: bconv(kernels.pack_bits(x, num_threads=threads), out=y),
        "fp32": fp32,
        "peak": lambda: peak_samples.append(_core.measure_binary_peak(PEAK_SECONDS)),
        "clock": lambda: clock_samples.append(_core.measure_clock_ghz(PEAK_SECONDS / 4)),
    }
    if with_int8:
        conv = nnq.Conv2d(channels, channels, kernel, padding=pad)
        qw = torch.quantize_per_tensor(wt.contiguous(), 0.05, 0, torch.qint8)
        conv.set_weight_bias(qw, bt)
        conv.scale, conv.zero_point = 0.5, 64
        qx = torch.quantize_per_tensor(xt, 0.05, 64, torch.quint8).contiguous(memory_format=torch.channels_last)

        def int8():
            with torch.inference_mode():
                conv(qx)

        out["int8"] = int8
    if threads > 1:
        out["peak_threads"] = lambda: peak_thread_samples.append(
            _core.measure_binary_peak_threads(PEAK_SECONDS, threads))
    return out


peak_samples: list[float] = []
peak_thread_samples: list[float] = []
clock_samples: list[float] = []


def measure(name: str, size: int, channels: int, kernel: int, threads: int, rounds: int, with_int8: bool):
    torch.set_num_threads(threads)
    peak_samples.clear()
    peak_thread_samples.clear()
    clock_samples.clear()
    stats = interleaved(contenders(size, channels, kernel, threads, with_int8), rounds=rounds, repeat=REPEAT,
                        min_seconds=0.5)
    macs = size * size * channels * channels * kernel * kernel
    peak = float(np.median(peak_samples))  # binary MACs per ns, one thread
    # All `threads` threads together (wall clock); one thread: the CPU-time peak above.
    peak_threads = float(np.median(peak_thread_samples)) if threads > 1 else peak
    ghz = float(np.median(clock_samples))
    records = []
    for contender, s in stats.items():
        if contender in ("peak", "peak_threads", "clock"):
            continue
        cpu = threads == 1
        median, p10, p90 = (s.cpu_median, s.cpu_p10, s.cpu_p90) if cpu else (s.median, s.p10, s.p90)
        records.append({
            "op": "conv2d", "layer": name, "contender": contender, "size": size, "in_c": channels,
            "out_c": channels, "kernel": kernel, "threads": threads, "macs": macs,
            "time": "thread_cpu" if cpu else "wall",
            "median_us": median * 1e6, "p10_us": p10 * 1e6, "p90_us": p90 * 1e6, "samples": s.samples,
            "wall_median_us": s.median * 1e6, "cpu_median_us": s.cpu_median * 1e6,
            "gmacs_per_s": macs / median * 1e-9, "peak_macs_per_ns": peak, "clock_ghz": ghz,
            "peak_threads_macs_per_ns": peak_threads, "machine_scaling": peak_threads / peak,
            "macs_per_cycle": macs / median * 1e-9 / ghz,
            "percent_of_peak": 100 * macs / median * 1e-9 / peak_threads,
        })
    return records


def measure_dense(name: str, batch: int, in_f: int, out_f: int, rounds: int):
    """Binary dense (packed in, float out; a prepared bdense) vs torch fp32 linear, one thread."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, in_f)).astype(np.float32)
    w = rng.standard_normal((out_f, in_f)).astype(np.float32)
    xp = kernels.pack_bits(x)
    wb = kernels.BconvWeights(kernels.pack_bits(w)[:, None, None, :], in_f)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)

    def fp32():
        with torch.inference_mode():
            torch.nn.functional.linear(xt, wt)

    # bdense is a 1x1 conv over a (1, batch, 1, words) map: prepared once, as for the layers.
    xd = xp.reshape(1, batch, 1, xp.shape[1])
    dense = kernels.Bconv2d(wb, xd.shape)
    y = np.empty(dense.output_shape, np.float32)
    peak_samples.clear()
    stats = interleaved({"binary": lambda: dense(xd, out=y), "fp32": fp32,
                         "peak": lambda: peak_samples.append(_core.measure_binary_peak(PEAK_SECONDS))},
                        rounds=rounds, repeat=REPEAT, min_seconds=0.5)
    macs, peak = batch * in_f * out_f, float(np.median(peak_samples))
    return [{"op": "dense", "layer": name, "contender": c, "batch": batch, "in_c": in_f, "out_c": out_f,
             "threads": 1, "macs": macs, "time": "thread_cpu", "median_us": s.cpu_median * 1e6,
             "p10_us": s.cpu_p10 * 1e6, "p90_us": s.cpu_p90 * 1e6, "wall_median_us": s.median * 1e6,
             "samples": s.samples, "peak_macs_per_ns": peak,
             "percent_of_peak": 100 * macs / s.cpu_median * 1e-9 / peak}
            for c, s in stats.items() if c != "peak"]


def markdown_dense(records) -> str:
    lines = ["| dense layer | binary us | % of peak | fp32 us | x fp32 |", "|---|---|---|---|---|"]
    for name in DENSE:
        b, f = by(records, layer=name, contender="binary"), by(records, layer=name, contender="fp32")
        lines.append(f"| {name} | {b['median_us']:.1f} | {b['percent_of_peak']:.0f}% | {f['median_us']:.1f} | "
                     f"{f['median_us'] / b['median_us']:.1f} |")
    return "\n".join(lines)


def by(records, **kw):
    return next(r for r in records if all(r[k] == v for k, v in kw.items()))


def markdown_layers(records, info) -> str:
    lines = [
        "| layer | threads | binary us | MACs/cycle | % of peak | binary+pack us | fp32 us | int8 us "
        "| x fp32 | x int8 | x fp32 incl. pack | 2T / 1T (machine) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in LAYERS:
        for threads in (1, 2):
            b = by(records, layer=name, threads=threads, contender="binary")
            bp = by(records, layer=name, threads=threads, contender="binary+pack")
            f = by(records, layer=name, threads=threads, contender="fp32")
            q = by(records, layer=name, threads=threads, contender="int8")
            scaling = ""
            if threads == 2:
                one = by(records, layer=name, threads=1, contender="binary")["wall_median_us"]
                scaling = f"{one / b['wall_median_us']:.2f} ({b['machine_scaling']:.2f})"
            lines.append(
                f"| {name} | {threads} | {b['median_us']:.1f} | {b['macs_per_cycle']:.0f} | "
                f"{b['percent_of_peak']:.0f}% | {bp['median_us']:.1f} | {f['median_us']:.0f} | {q['median_us']:.0f} | "
                f"{f['median_us'] / b['median_us']:.1f} | {q['median_us'] / b['median_us']:.1f} | "
                f"{f['median_us'] / bp['median_us']:.1f} | {scaling} |")
    peaks = [r["peak_macs_per_ns"] for r in records]
    clocks = [r["clock_ghz"] for r in records]
    lines += [
        "",
        f"Binary peak (XOR/POPCOUNT/ADD loop, median per layer): {min(peaks):.0f}-{max(peaks):.0f} MACs/ns; "
        f"clock from a dependent-ADD chain: {min(clocks):.2f}-{max(clocks):.2f} GHz, i.e. "
        f"{np.median(peaks) / np.median(clocks):.0f} binary MACs/cycle. "
        f"% of peak = binary MACs/ns over the peak measured interleaved in the same run, for two-thread "
        f"rows the loop's throughput on both threads at once (wall clock). "
        f"Single-thread rows: medians of the calling thread's CPU time; two-thread rows and 2T / 1T "
        f"(wall 1T over wall 2T): wall-clock medians; (machine): the peak loop's own 2T / 1T scaling in "
        f"the same rounds, what the VM's second vCPU delivered at the time.",
    ]
    return "\n".join(lines)


def markdown_grid(records) -> str:
    lines = ["| size | channels | kernel | binary us | % of peak | fp32 us | int8 us | x fp32 | x int8 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        if r["contender"] != "binary":
            continue
        f = by(records, layer=r["layer"], contender="fp32")
        q = by(records, layer=r["layer"], contender="int8")
        lines.append(f"| {r['size']} | {r['in_c']} | {r['kernel']} | {r['median_us']:.1f} | "
                     f"{r['percent_of_peak']:.0f}% | {f['median_us']:.0f} | {q['median_us']:.0f} | "
                     f"{f['median_us'] / r['median_us']:.1f} | {q['median_us'] / r['median_us']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", action="store_true", help="LCE Figure 3 grid instead of layers A-D")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per configuration")
    parser.add_argument("--json", help="write the records here")
    parser.add_argument("--md", help="write the markdown table here")
    args = parser.parse_args(argv)
    torch.backends.quantized.engine = "x86"
    info = machine_info()
    info.update(isa=kernels.active_isa(), ukernel=kernels.selected_ukernel("bconv2d"),
                peak_loop=kernels.selected_ukernel("xor_popcount_loop"),
                torch=torch.__version__, command="python benchmarks/bconv_bench.py " + " ".join(argv or sys.argv[1:]))
    records = []
    if args.grid:
        for kernel in GRID_KERNELS:
            for size in GRID_SIZES:
                for channels in GRID_CHANNELS:
                    name = f"{size}x{size}x{channels} k{kernel}"
                    records += measure(name, size, channels, kernel, 1, args.rounds or 10, True)
                    print(name, f"{by(records, layer=name, contender='binary')['median_us']:.1f} us", flush=True)
        table = markdown_grid(records)
    else:
        for name, (size, channels) in LAYERS.items():
            for threads in (1, 2):
                records += measure(name, size, channels, 3, threads, args.rounds or 100, True)
        dense = []
        for name, shape in DENSE.items():
            dense += measure_dense(name, *shape, args.rounds or 100)
        table = markdown_layers(records, info) + "\n\n" + markdown_dense(dense)
        records += dense
    header = (f"Machine: {info.get('cpu')} ({info.get('cpus')} logical CPUs, /proc/cpuinfo {info.get('cpuinfo_mhz')} MHz, "
              f"load average {info.get('loadavg')}), ISA {info['isa']} ({info['ukernel']}; peak loop {info['peak_loop']}), torch {info['torch']}, "
              f"commit {info['commit']}.\n\nCommand: `{info['command']}`\n")
    print(header)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "records": records}, f, indent=1)
    if args.md:
        with open(args.md, "w") as f:
            f.write(header + "\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

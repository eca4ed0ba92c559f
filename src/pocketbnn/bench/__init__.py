"""Latency measurement shared by the benchmarks: interleaved timing, robust statistics, machine info."""

from pocketbnn.bench.timing import Stats, interleaved, machine_info, paired_ratio

__all__ = ["Stats", "interleaved", "machine_info", "paired_ratio"]

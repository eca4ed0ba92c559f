"""Interleaved timing of several contenders, for noisy shared machines.

Each round calls every contender once, in a fresh random order, so slow spells of the machine
hit all of them alike; per contender the samples are summarised by median and 10th / 90th
percentiles. Ratios of medians measured this way are fair even when absolute times drift.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import random
import subprocess
import time
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Stats:
    """Seconds per call of one contender."""

    median: float
    p10: float
    p90: float
    samples: int

    @classmethod
    def of(cls, seconds: list[float]) -> Stats:
        a = np.asarray(seconds)
        return cls(float(np.median(a)), float(np.percentile(a, 10)), float(np.percentile(a, 90)), len(a))


def interleaved(
    contenders: dict[str, Callable[[], object]],
    *,
    rounds: int,
    warmup: int = 3,
    min_seconds: float = 0.0,
    seed: int = 0,
) -> dict[str, Stats]:
    """Time each contender ``rounds`` times (after ``warmup`` untimed rounds), interleaved.

    Args:
        contenders: name -> zero-argument callable.
        rounds: timed rounds; continues past that until ``min_seconds`` have elapsed.
        warmup: untimed rounds first (caches, thread pools, lazy initialisation).
        min_seconds: lower bound on the total timed wall time.
        seed: seed of the per-round shuffling.

    Returns:
        name -> :class:`Stats` of seconds per call.
    """
    order = list(contenders)
    rng = random.Random(seed)
    for _ in range(warmup):
        for name in order:
            contenders[name]()
    samples: dict[str, list[float]] = {name: [] for name in order}
    start = time.perf_counter()
    done = 0
    while done < rounds or time.perf_counter() - start < min_seconds:
        rng.shuffle(order)
        for name in order:
            fn = contenders[name]
            t = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t)
        done += 1
    return {name: Stats.of(s) for name, s in samples.items()}


def machine_info() -> dict[str, object]:
    """CPU model, logical CPUs, nominal MHz from /proc/cpuinfo, load average, and git commit."""
    info: dict[str, object] = {"machine": platform.machine(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}
        info["cpu"] = fields.get("model name", "")
        info["cpuinfo_mhz"] = float(fields.get("cpu MHz", "nan"))
    except OSError:
        pass
    if hasattr(os, "getloadavg"):
        info["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = None
    return info
